import os
import time
from pathlib import Path


def wait(event, context):
    """Waits until the file named by the ``latch`` query parameter exists (a cross-process latch)."""
    latch = (event.get("queryStringParameters") or {}).get("latch")
    give_up = time.monotonic() + 20
    while latch and not Path(latch).exists() and time.monotonic() < give_up:
        time.sleep(0.005)
    return {"statusCode": 200, "body": str(os.getpid())}
