import json
import logging
import os
import time
import uuid
from decimal import Decimal

from todos import table


def create(event, context):
    data = json.loads(event["body"])
    if "text" not in data:
        logging.error("Validation Failed")
        raise Exception("Couldn't create the todo item.")
    timestamp = Decimal(str(time.time()))
    item = {
        "id": str(uuid.uuid1()),
        "text": data["text"],
        "checked": False,
        "createdAt": timestamp,
        "updatedAt": timestamp,
    }
    table.put_item(os.environ["DYNAMODB_TABLE"], item)
    return {"statusCode": 200, "body": json.dumps(item, default=str)}
