import json
import os

from todos import decimalencoder, table


def list(event, context):
    items = table.scan(os.environ["DYNAMODB_TABLE"])
    return {"statusCode": 200, "body": json.dumps(items, cls=decimalencoder.DecimalEncoder)}
