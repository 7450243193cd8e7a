"""How ``portway serve`` writes to the console: the gateway's own log records, each function's
output line by line prefixed with the function's name, and the access lines
(:mod:`server.access_log`).

    2026-12-04 16:00:00,001 INFO portway: ...                      the gateway
    todos-dev-list | [INFO]\t2026-12-04T16:00:00.123Z\t<request id>\tx     a handler's logging.info
    todos-dev-list | hello                                          a handler's print
"""

from __future__ import annotations

import logging

__all__ = ["ConsoleFormatter", "setup_console"]

_FUNCTION = "portway.function."
_GATEWAY_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ConsoleFormatter(logging.Formatter):
    """Function output as ``<function> | <line>`` (the line carries its own Lambda timestamp)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name.startswith(_FUNCTION):
            return f"{record.name[len(_FUNCTION) :]} | {record.getMessage()}"
        return super().format(record)


def setup_console(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ConsoleFormatter(_GATEWAY_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
