import json
import sys

import portway_tiny_dep  # from requirements.txt
import sharedlib  # from the layer's python/


def hello(event, context):
    body = {
        "dep": portway_tiny_dep.GREETING,
        "dep_file": portway_tiny_dep.__file__,
        "layer": sharedlib.NAME,
        "path": sys.path[:4],
    }
    return {"statusCode": 200, "body": json.dumps(body)}
