"""The pieces of the Lambda Python runtime contract shared by the gateway and the worker child.

* :class:`LambdaContext`: the ``context`` argument handlers receive (same attributes as
  ``awslambdaric``'s ``LambdaContext``).
* :func:`load_handler`: imports ``module.function`` and reports failures the way Lambda does
  (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, ...).
* :func:`error_payload`: Lambda's ``{"errorType", "errorMessage", "stackTrace"}`` for an exception.
* :func:`dumps`: encodes a handler result as Lambda's runtime would (``Decimal`` as an exact number,
  ``datetime``/dataclasses/other objects rejected); raises :class:`MarshalError` otherwise.

Error types starting with ``Runtime.`` or ``Function.`` are failures to run the function (the
gateway raises ``InvokeFailure``); any other error type names an exception the handler raised
(``FunctionError``): an exception class name never contains a dot, so the two cannot be confused.

Pure and dependency-light on purpose: the worker child imports this module before any user code,
so it must not import the gateway (``server``) or asyncio.
"""

from __future__ import annotations

import decimal
import importlib
import os
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "MAX_RESPONSE_BYTES",
    "CognitoIdentity",
    "HandlerLoadError",
    "LambdaContext",
    "MarshalError",
    "dumps",
    "error_log_lines",
    "error_payload",
    "is_runtime_failure",
    "load_handler",
    "new_log_stream_name",
    "runtime_file",
    "stack_trace",
]

# Lambda's synchronous invocation response limit.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# The runtime's json.dumps rejects datetime and dataclass instances, which orjson would encode.
# (orjson still encodes UUID and plain Enum members natively, where the runtime would fail.)
_DUMPS_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# Frames of these files are the runtime's, not the user's: stripped from stack traces.
_RUNTIME_FILES: set[str] = {os.path.abspath(__file__)}


class HandlerLoadError(Exception):
    """The handler could not be loaded; ``payload`` is Lambda's init error payload."""

    def __init__(self, error_type: str, error_message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.payload: dict[str, Any] = {
            "errorType": error_type,
            "errorMessage": error_message,
            "stackTrace": stack_trace or [],
        }


class MarshalError(Exception):
    """The result cannot be returned: not JSON-serialisable, or larger than Lambda allows."""

    def __init__(self, error_type: str, error_message: str) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message


class CognitoIdentity:
    """``context.identity``: always present, both ids ``None`` outside the AWS Mobile SDK."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The handler's ``context``; ``deadline_ms`` is wall-clock epoch milliseconds (as Lambda's)."""

    __slots__ = (
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "_deadline_ms",
    )

    def __init__(
        self,
        *,
        aws_request_id: str,
        function_name: str,
        memory_limit_in_mb: int,
        region: str,
        account_id: str,
        deadline_ms: int,
        log_stream_name: str,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        # awslambdaric exposes it as a string (it comes from an environment variable).
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity = CognitoIdentity()
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r})"


def new_log_stream_name() -> str:
    """One per execution environment, formatted like Lambda's ``2024/05/01/[$LATEST]<32 hex>``."""
    return time.strftime("%Y/%m/%d", time.gmtime()) + "/[$LATEST]" + secrets.token_hex(16)


def runtime_file(path: str) -> None:
    """Mark a module file as runtime code so its frames are dropped from user stack traces."""
    _RUNTIME_FILES.add(os.path.abspath(path))


def stack_trace(exc: BaseException) -> list[str]:
    """Lambda's ``stackTrace``: formatted frames, leading runtime frames removed."""
    frames = traceback.extract_tb(exc.__traceback__)
    start = 0
    while start < len(frames) and os.path.abspath(frames[start].filename) in _RUNTIME_FILES:
        start += 1
    return traceback.format_list(frames[start:])


def is_runtime_failure(error_type: str) -> bool:
    """True for Lambda's own error types (import, marshal, exit...), false for handler exceptions."""
    return error_type.startswith(("Runtime.", "Function."))


def error_payload(exc: BaseException) -> dict[str, Any]:
    return {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": stack_trace(exc)}


def error_log_lines(payload: dict[str, Any]) -> list[str]:
    """What Lambda's runtime logs for a failed invocation or init: ``[ERROR] Type: message``, then
    ``Traceback (most recent call last):`` and the stack trace, one line per line."""
    error_type, message = payload.get("errorType"), payload.get("errorMessage")
    head = "[ERROR]" + (f" {error_type}" if error_type else "")
    if message:
        head += (":" if error_type else "") + f" {message}"
    lines = [head]
    trace = payload.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            lines.extend(str(element).splitlines() or [""])
    return lines


def load_handler(handler: str) -> Callable[..., Any]:
    """Import ``module.function`` (``module`` may be dotted or use ``/``), raising HandlerLoadError.

    The caller must already have put the code directory on ``sys.path``. Messages match Lambda's.
    """
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise HandlerLoadError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    module_name = module_name.replace("/", ".")
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise HandlerLoadError(
            "Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerLoadError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise HandlerLoadError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace
        ) from None
    except BaseException as exc:  # module-level code raised (or called sys.exit): Lambda's init error
        payload = error_payload(exc)
        raise HandlerLoadError(payload["errorType"], payload["errorMessage"], payload["stackTrace"]) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise HandlerLoadError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    if not callable(function):
        raise HandlerLoadError("Runtime.HandlerNotFound", f"Handler '{function_name}' is not callable")
    return function  # type: ignore[no-any-return]


def _default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        # Lambda writes Decimal (DynamoDB numbers) as an exact JSON number, not a float.
        return orjson.Fragment(str(obj)) if obj.is_finite() else None
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Encode a result (or a frame holding one) with the runtime's rules; raises MarshalError."""
    try:
        data = orjson.dumps(value, default=_default, option=_DUMPS_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        raise MarshalError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
    if len(data) > MAX_RESPONSE_BYTES:
        raise MarshalError(
            "Function.ResponseSizeTooLarge",
            f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
        )
    return data
