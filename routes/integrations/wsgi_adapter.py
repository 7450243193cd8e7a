"""Serve a WSGI app (Flask, Django...) behind a Lambda proxy event, as the serverless-wsgi plugin does.

A function whose handler is ``wsgi_handler.handler`` with ``custom.wsgi.app: module.app`` in
``serverless.yml`` is what the plugin deploys: its ``wsgi_handler.py`` imports the app and
``serverless_wsgi.handle_request`` turns each API Gateway event into a WSGI environ and the app's
answer into a proxy result. This module is Portway's own copy of that translation (same environ,
same result shape), so such a project runs unchanged without the plugin or werkzeug installed:

* REST / payload 1.0 (``multiValueHeaders`` when present) and HTTP API payload 2.0 (``cookies``
  back into ``Cookie``) requests; a base64 request body is decoded.
* ``SCRIPT_NAME``: the plugin uses ``/{stage}`` when the request came through the
  ``execute-api`` host (whose URLs carry the stage); Portway's URLs carry it exactly when the
  event's ``requestContext.path`` (payload 1.0) or ``rawPath`` (2.0) starts with it, so that is
  the test here. ``STRIP_STAGE_PATH`` and ``API_GATEWAY_BASE_PATH`` behave as in the plugin.
* Environ extras: ``serverless.authorizer``, ``serverless.event``, ``serverless.context`` (the
  plugin's names since 2.0) and the older ``API_GATEWAY_AUTHORIZER``, ``event``, ``context``.
* Result: text bodies (``text/*`` and the plugin's list, plus ``custom.wsgi.textMimeTypes``)
  as text, other bodies base64 with ``isBase64Encoded``; ``multiValueHeaders`` when the event
  had them, else ``headers`` with repeated names spread over letter casings (the plugin's way to
  pass several ``Set-Cookie`` through a single-valued map).
* Warm-up events (``aws.events``, ``serverless-plugin-warmup``) answer ``{}`` without calling the app.

Two deliberate differences, both where the plugin loses information: a request header sent
several times reaches the app comma-joined (``; `` for ``Cookie``) instead of only its last
value, and every environ string (headers included) is WSGI's latin-1 "native string".

Pure (no I/O): the worker child imports it before any user code (see ``_worker_main``).
"""

from __future__ import annotations

import base64
import html
import importlib
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote, urlencode

__all__ = [
    "SETTINGS_VARIABLE",
    "TEXT_MIME_TYPES",
    "WsgiHandler",
    "build_environ",
    "handle_request",
    "handler_from_environment",
    "import_app",
    "wsgi_result",
]

# The gateway hands a worker its function's `custom.wsgi` settings in this variable (JSON:
# {"app", "textMimeTypes"}); the worker removes it before user code runs (Lambda has no such variable).
SETTINGS_VARIABLE = "_PORTWAY_WSGI"

# serverless_wsgi.TEXT_MIME_TYPES: bodies of these types (and text/*) are returned as text.
TEXT_MIME_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/vnd.api+json",
    "image/svg+xml",
)
_WARMUP_SOURCES = ("aws.events", "serverless-plugin-warmup")
_TRUE = ("yes", "y", "true", "t", "1")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _native(text: str) -> str:
    """PEP 3333: environ strings carry bytes as latin-1 code points."""
    return text.encode("utf-8").decode("latin-1")


def _request_headers(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    multi = event.get("multiValueHeaders")
    if multi:
        return [(str(k), str(v)) for k, values in multi.items() for v in (values or [])]
    return [(str(k), str(v)) for k, v in (event.get("headers") or {}).items()]


def _query_string(event: Mapping[str, Any]) -> str:
    if event.get("version") == "2.0":
        return str(event.get("rawQueryString", ""))
    params = event.get("multiValueQueryStringParameters") or event.get("queryStringParameters") or {}
    return urlencode(params, doseq=True)


def _script_and_path(event: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str]:
    context = event.get("requestContext") or {}
    stage = str(context.get("stage", ""))
    if event.get("version") == "2.0":
        full = str(event.get("rawPath", "/"))
        path = full
    else:
        path = str(event.get("path", "/"))
        full = str(context.get("path", path))
    path = path.split("?", 1)[0]  # the plugin strips a query some emulators leave on the path
    prefix = f"/{stage}"
    script = ""
    if stage and stage != "$default":
        if event.get("version") == "2.0":
            if full == prefix or full.startswith(prefix + "/"):  # rawPath carries the stage:
                script, path = prefix, full[len(prefix) :] or "/"  # the app must not see it twice
        elif full in (prefix + path, prefix + path.rstrip("/")):
            script = prefix
    if env.get("STRIP_STAGE_PATH", "").lower().strip() in _TRUE:
        script = ""
    base_path = env.get("API_GATEWAY_BASE_PATH")
    if base_path:
        script = "/" + base_path
        if path.startswith(script):
            path = path[len(script) :]
    return script, path


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def build_environ(
    event: Mapping[str, Any], context: Any, *, env: Mapping[str, str], errors: Any = None
) -> dict[str, Any]:
    """The WSGI environ for one API Gateway proxy event (payload 1.0 or 2.0)."""
    v2 = event.get("version") == "2.0"
    request_context = event.get("requestContext") or {}
    pairs = _request_headers(event)
    if v2 and event.get("cookies"):
        pairs = [(k, v) for k, v in pairs if k.lower() != "cookie"]
        pairs.append(("Cookie", "; ".join(event["cookies"])))
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in headers:
            headers[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            headers[key] = value
    body = _body(event)
    script, path = _script_and_path(event, env)
    authorizer = request_context.get("authorizer")
    if v2:
        method = (request_context.get("http") or {}).get("method", "")
        source_ip = (request_context.get("http") or {}).get("sourceIp", "")
    else:
        method = event.get("httpMethod", "")
        source_ip = (request_context.get("identity") or {}).get("sourceIp", "")
    environ: dict[str, Any] = {
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.pop("HTTP_CONTENT_TYPE", ""),
        "PATH_INFO": unquote(path),
        "QUERY_STRING": _query_string(event),
        "REMOTE_ADDR": source_ip or "",
        "REMOTE_USER": (authorizer or {}).get("principalId", "") if isinstance(authorizer, dict) else "",
        "REQUEST_METHOD": method or "",
        "SCRIPT_NAME": script,
        "SERVER_NAME": headers.get("HTTP_HOST", "lambda"),
        "SERVER_PORT": headers.get("HTTP_X_FORWARDED_PORT", "443"),
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    headers.pop("HTTP_CONTENT_LENGTH", None)  # the body's real length is CONTENT_LENGTH
    environ.update(headers)
    for key, value in environ.items():
        if isinstance(value, str):
            environ[key] = _native(value)
    environ.update(
        {
            "wsgi.errors": errors if errors is not None else sys.stderr,
            "wsgi.input": io.BytesIO(body),
            "wsgi.multiprocess": False,
            "wsgi.multithread": False,
            "wsgi.run_once": False,
            "wsgi.url_scheme": headers.get("HTTP_X_FORWARDED_PROTO", "https"),
            "wsgi.version": (1, 0),
            "serverless.authorizer": authorizer,
            "serverless.event": event,
            "serverless.context": context,
            "API_GATEWAY_AUTHORIZER": authorizer,
            "event": event,
            "context": context,
        }
    )
    return environ


def _run(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Call the app once (PEP 3333): status, header list, the whole body; ``close()`` always."""
    state: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], Any]:
        if exc_info is not None and state.get("sent"):
            raise exc_info[1].with_traceback(exc_info[2])
        state["status"], state["headers"] = status, headers
        return written.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                state["sent"] = True
                written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in state:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status = int(str(state["status"]).split(" ", 1)[0])
    headers = [(str(k), str(v)) for k, v in state["headers"]]
    return status, headers, b"".join(written)


def _all_casings(name: str) -> Iterable[str]:
    """Every upper/lower variant of ``name`` (serverless_wsgi.all_casings), in the plugin's order."""
    if not name:
        yield ""
        return
    first, rest = name[:1], name[1:]
    for tail in _all_casings(rest):
        if first.lower() == first.upper():
            yield first + tail
        else:
            yield first.lower() + tail
            yield first.upper() + tail


def wsgi_result(
    status: int,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    multi_value: bool,
    text_mime_types: Sequence[str] = (),
) -> dict[str, Any]:
    """The proxy result for the app's answer (serverless_wsgi.generate_response)."""
    grouped: dict[str, list[str]] = {}
    display: dict[str, str] = {}
    for name, value in headers:
        display.setdefault(name.lower(), name)
        grouped.setdefault(display[name.lower()], []).append(value)
    result: dict[str, Any] = {"statusCode": status}
    if multi_value:
        result["multiValueHeaders"] = grouped
    else:
        single: dict[str, str] = {}
        for name, values in grouped.items():
            if len(values) == 1:
                single[name] = values[0]
            else:
                single.update(zip(_all_casings(name), values, strict=False))
        result["headers"] = single
    if body:
        lower = {k.lower(): v[-1] for k, v in grouped.items()}
        content_type = lower.get("content-type", "")
        mimetype = content_type.split(";", 1)[0].strip().lower() or "text/plain"
        charset = "utf-8"
        for param in content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        textual = mimetype.startswith("text/") or mimetype in (*TEXT_MIME_TYPES, *text_mime_types)
        if textual and not lower.get("content-encoding"):
            result["body"] = body.decode(charset, "replace")
            result["isBase64Encoded"] = False
        else:
            result["body"] = base64.b64encode(body).decode("ascii")
            result["isBase64Encoded"] = True
    return result


def handle_request(
    app: WsgiApp,
    event: Mapping[str, Any],
    context: Any,
    *,
    env: Mapping[str, str],
    text_mime_types: Sequence[str] = (),
) -> dict[str, Any]:
    """One Lambda invocation of a WSGI app (serverless_wsgi.handle_request, proxy events)."""
    if event.get("source") in _WARMUP_SOURCES:
        return {}
    status, headers, body = _run(app, build_environ(event, context, env=env))
    multi_value = bool(event.get("multiValueHeaders")) and event.get("version") != "2.0"
    return wsgi_result(status, headers, body, multi_value=multi_value, text_mime_types=text_mime_types)


def import_app(spec: str, task_root: str) -> WsgiApp:
    """``custom.wsgi.app``: ``module.attr`` or ``folder/module.attr`` (the folder goes on sys.path,
    as wsgi_handler.import_app does). Import errors propagate (the caller reports them as Lambda
    reports a failed init)."""
    module_path, _, attribute = spec.rpartition(".")
    folder, _, module_name = module_path.rpartition("/")
    if folder:
        sys.path.insert(0, os.path.join(task_root, folder))
    app: WsgiApp = getattr(importlib.import_module(module_name), attribute)
    return app


class WsgiHandler:
    """The ``wsgi_handler.handler`` Lambda handler for one app (what the plugin deploys)."""

    def __init__(
        self, app: WsgiApp, *, text_mime_types: Sequence[str] = (), env: Mapping[str, str] | None = None
    ):
        self._app = app
        self._text = tuple(text_mime_types)
        self._env = os.environ if env is None else env

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return handle_request(self._app, event, context, env=self._env, text_mime_types=self._text)


def _import_failed(spec: str) -> WsgiApp:
    """What the plugin serves when the app cannot be imported: werkzeug's 500 page, every request."""
    message = f"Unable to import app: {spec}"
    page = (
        "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
        f"<h1>Internal Server Error</h1>\n<p>{html.escape(message)}</p>\n"
    ).encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(
            "500 INTERNAL SERVER ERROR",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))],
        )
        return [page]

    return app


def handler_from_environment(environ: MutableMapping[str, str], task_root: str) -> WsgiHandler | None:
    """The worker's hook: a :class:`WsgiHandler` when the gateway set :data:`SETTINGS_VARIABLE`
    (which is removed), else ``None`` (an ordinary handler).

    Like the plugin's ``wsgi_handler``, an app that fails to import is logged with its traceback
    and answered with a 500 page on every request, not a failed init.
    """
    raw = environ.pop(SETTINGS_VARIABLE, None)
    if raw is None:
        return None
    settings = json.loads(raw)
    spec = str(settings["app"])
    try:
        app = import_app(spec, task_root)
    except Exception as exc:  # the plugin catches Exception too: SystemExit still ends the sandbox
        print(f"[ERROR] Unable to import app: '{spec}' - {exc}", file=sys.stderr)
        traceback.print_exc()
        app = _import_failed(spec)
    return WsgiHandler(app, text_mime_types=[str(t) for t in settings.get("textMimeTypes") or []])
