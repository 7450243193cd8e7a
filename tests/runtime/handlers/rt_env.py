import os


def environ(event, context):
    return dict(os.environ)
