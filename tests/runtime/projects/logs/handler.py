import logging


def talk(event, context):
    logging.info("not shown: the root logger is at WARNING until the function sets it")
    logging.getLogger().setLevel(logging.INFO)
    logging.info("x")
    print("printed line one\nprinted line two")
    return {"statusCode": 200, "body": context.aws_request_id}


def fail(event, context):
    return helper()


def helper():
    raise ValueError("boom")


def ws(event, context):
    return {"statusCode": 200}
