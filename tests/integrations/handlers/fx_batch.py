"""Handlers for batched invocations (tests/integrations/test_worker_batches.py)."""

import os
import time
from pathlib import Path

CALLS = 0


def step(event, context):
    """Counts its calls (globals persist per worker); then does what ``event["do"]`` says."""
    global CALLS
    CALLS += 1
    do = event.get("do")
    if do == "latch":  # wait until the file event["path"] exists (a cross-process latch)
        give_up = time.monotonic() + 30
        while not Path(event["path"]).exists() and time.monotonic() < give_up:
            time.sleep(0.005)
    elif do == "crash":
        os._exit(1)
    elif do == "hang":
        time.sleep(30)
    return {"calls": CALLS, "pid": os.getpid(), "request_id": context.aws_request_id}
