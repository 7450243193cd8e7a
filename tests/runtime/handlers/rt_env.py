import os


def environ(event, context):
    return dict(os.environ)


def proxy(event, context):
    import json

    return {"statusCode": 200, "body": json.dumps(dict(os.environ))}
