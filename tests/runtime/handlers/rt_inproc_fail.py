def fail(event, context):
    raise KeyError("missing")
