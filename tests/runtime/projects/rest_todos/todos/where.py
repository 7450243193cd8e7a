import json
import os
import sys


def where(event, context):
    here = {
        "module": __name__,
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "path0": sys.path[0],
        "cwd": os.getcwd(),
    }
    return {"statusCode": 200, "body": json.dumps(here)}
