"""Handlers served by awslambdaric through Portway's Runtime API."""

import os


def handler(event, context):
    if event.get("fail"):
        raise KeyError(event["fail"])
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 5000,
        "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
    }
