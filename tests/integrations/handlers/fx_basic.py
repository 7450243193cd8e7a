"""Handler fixtures for the Python integration tests (imported by module name from this folder)."""

import asyncio
import datetime
import decimal
import os
import signal
import sys
import threading
import time
from pathlib import Path

CALLS = 0
RELEASE = threading.Event()  # in-process only: lets a test unblock `block_on_event`


def _context(context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": context.client_context,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def echo(event, context):
    return {"event": event, "context": _context(context), "pid": os.getpid()}


async def async_echo(event, context):
    await asyncio.sleep(0)
    return {"event": event, "context": _context(context), "pid": os.getpid(), "async": True}


def boom(event, context):
    raise ValueError(f"bad input: {event.get('x')}")


async def async_boom(event, context):
    await asyncio.sleep(0)
    raise KeyError("missing")


def exits(event, context):
    sys.exit(3)


def count(event, context):
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "pid": os.getpid()}


def env(event, context):
    return {name: os.environ.get(name) for name in event["names"]}


def sleep(event, context):
    time.sleep(event["seconds"])
    return "late"


async def async_sleep(event, context):
    await asyncio.sleep(event["seconds"])
    return "late"


def block_until(event, context):
    """Blocks until the file ``event["path"]`` exists (a cross-process latch)."""
    path = Path(event["path"])
    give_up = time.monotonic() + 30
    while not path.exists() and time.monotonic() < give_up:
        time.sleep(0.005)
    return {"released": True, "pid": os.getpid()}


def block_on_event(event, context):
    RELEASE.wait(30)
    return "released"


def crash(event, context):
    os._exit(1)


def segfault(event, context):
    os.kill(os.getpid(), signal.SIGSEGV)


def noisy(event, context):
    print("hello from the handler")
    print("\x00\x00\x00\x05{}junk that looks like a frame", flush=True)
    sys.stdout.write("no newline yet")
    print("to stderr", file=sys.stderr)
    return {"quiet": True}


def not_json(event, context):
    return {"when": datetime.datetime(2024, 1, 1)}


def money(event, context):
    return {"price": decimal.Decimal("19.99")}


def big(event, context):
    return {"data": "x" * event["size"], "echo": event.get("payload")}


def mutate(event, context):
    event["added"] = True
    return event
