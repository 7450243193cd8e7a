"""Replaying recorded AWS cases: a byte-level HTTP client and the comparison rules.

A case file (``cases/*.json``) holds ``{"about", "api", "cases": [...]}``; each case has ``id``,
``source`` (repository, commit, file, test, snapshot ``key``), ``request`` (``method``, ``target``
as sent on the request line, ``headers`` as ordered pairs, ``body``) and ``expect``:

* ``status``: the status code AWS answered;
* ``event``: the Lambda event AWS built (the function echoed it back as the response body);
* ``body``: the response body (JSON when it parses, else text); ``body_base64``: the exact bytes;
* ``headers``: every response header AWS sent (names compared case-insensitively, as HTTP does);
* ``errorType``: the ``x-amzn-ErrorType`` header;
* ``checks``: assertions the recorded test made outside its snapshot (``contains``, ``absent``,
  part ``equals`` / ``not_equals``), or the exact header ``lines`` of a repeated header;
* ``normalised``: headers whose recorded value the snapshot tool replaced (any value matches);
* ``any_value``: JSON paths the recorded test itself did not verify (its ``skip_snapshot_verify``
  list): present, any value.

A case's ``ignore`` (with its ``why``) lists JSON paths left out entirely: headers the recording's
*backend* added itself (a Lambda function URL adds ``x-forwarded-*`` and ``x-amzn-tls-*``), which
say nothing about API Gateway.

Recorded values are kept as the snapshot has them. The only rules applied here:

* a value like ``<host:1>`` is the snapshot tool's stand-in for an account-, host- or time-specific
  value: any present, non-null value matches it (inside a longer string, any text);
* a JSON object or array recorded where the wire had a JSON string (the snapshot tool parses
  string bodies) matches that string once parsed;
* headers only CloudFront adds (``Via``, ``X-Amz-Cf-*``, ``X-Cache``, ``CloudFront-*``: the
  recordings used edge-optimised endpoints) and the response's hop-by-hop ``Connection`` are left
  out of header comparisons: docs/aws-contract.md, "Deliberate differences".

A case may carry ``difference`` (why Portway deliberately differs, named in docs/aws-contract.md)
and ``ignore`` (the JSON paths that differ); everything else in it is still compared.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CASES_DIR = Path(__file__).parent / "cases"

_PLACEHOLDER = re.compile(r"^<[^<>]+>$")
_EMBEDDED = re.compile(r"<[^<>\s]+:\d+>")
_EDGE_EXACT = frozenset({"via", "x-amz-cf-id", "x-amz-cf-pop", "x-cache"})
_HOP_BY_HOP = frozenset({"connection", "keep-alive"})


def edge_only(name: str) -> bool:
    lname = name.lower()
    return lname in _EDGE_EXACT or lname.startswith("cloudfront-")


@dataclass
class Case:
    file: str
    api: str
    data: dict[str, Any]
    runner: str = "http"  # "admin": boto3 calls to the admin API (test_admin_cases.py)

    @property
    def id(self) -> str:
        return str(self.data["id"])


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CASES_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        for case in doc["cases"]:
            api = str(case.get("api", doc.get("api", "")))
            cases.append(Case(path.name, api, case, str(doc.get("runner", "http"))))
    return cases


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes = field(repr=False, default=b"")

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None


async def send_message(port: int, request: dict[str, Any], *, timeout_s: float = 15.0) -> RawResponse:
    """Open a WebSocket (no User-Agent, as the recorded client sent none), send ``request["send"]``
    as a text frame and return the first frame received as the body."""
    async with (
        asyncio.timeout(timeout_s),
        aiohttp.ClientSession(skip_auto_headers={"User-Agent"}) as session,
        session.ws_connect(f"http://127.0.0.1:{port}{request['target']}", autoping=False) as ws,
    ):
        await ws.send_str(request["send"])
        message = await ws.receive()
        await ws.close()
    data = message.data if isinstance(message.data, str) else ""
    return RawResponse(101, [], data.encode("utf-8"))


async def send(port: int, request: dict[str, Any], *, timeout_s: float = 15.0) -> RawResponse:
    """Send the case's request byte for byte (header names, casing and order as recorded)."""
    if "send" in request:
        return await send_message(port, request, timeout_s=timeout_s)
    body = request.get("body")
    payload = body.encode("utf-8") if isinstance(body, str) else b""
    if request.get("chunked"):  # the recorded client sent Transfer-Encoding: chunked
        payload = (f"{len(payload):x}\r\n".encode() + payload + b"\r\n" if payload else b"") + b"0\r\n\r\n"
    lines = [f"{request['method']} {request['target']} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in request.get("headers", [])]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head + payload)
            await writer.drain()
            return await _read_response(reader)
        finally:
            writer.close()


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    for _ in range(10):  # interim answers (100 Continue to an Expect header) come first
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        if status >= 200:
            break
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    response = RawResponse(status, headers, b"", head)
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        for _ in range(100_000):  # bounded: a test body is far smaller
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        response.body = b"".join(chunks)
    else:
        response.body = await reader.readexactly(int(response.header("content-length") or "0"))
    return response


def compare(
    expected: Any,
    actual: Any,
    path: str,
    diffs: list[str],
    ignore: frozenset[str],
    any_value: frozenset[str] = frozenset(),
) -> None:
    """Record every difference between a recorded value and Portway's, by JSON path."""
    if path in ignore:
        return
    if path in any_value or (isinstance(expected, str) and _PLACEHOLDER.match(expected)):
        if actual is None or actual == "":
            diffs.append(f"{path}: expected a value ({expected}), got {actual!r}")
        return
    if isinstance(expected, str) and _EMBEDDED.search(expected):  # "AmazonAPIGateway_<api-id:1>"
        pattern = ".+".join(re.escape(part) for part in _EMBEDDED.split(expected))
        if not isinstance(actual, str) or not re.fullmatch(pattern, actual):
            diffs.append(f"{path}: expected {expected!r}, got {actual!r}")
        return
    if isinstance(expected, dict | list) and isinstance(actual, str):
        try:
            actual = json.loads(actual)
        except ValueError:
            diffs.append(f"{path}: expected JSON {expected!r}, got text {actual!r}")
            return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            diffs.append(f"{path}: expected an object, got {actual!r}")
            return
        keys = set(expected)
        if path.endswith(("headers", "multiValueHeaders")):
            keys = {k for k in keys if not edge_only(k)}
        for key in sorted(keys - set(actual)):
            if f"{path}.{key}" not in ignore:
                diffs.append(f"{path}.{key}: missing (AWS: {expected[key]!r})")
        for key in sorted(set(actual) - set(expected)):
            if f"{path}.{key}" not in ignore:
                diffs.append(f"{path}.{key}: not sent by AWS (Portway: {actual[key]!r})")
        for key in sorted(keys & set(actual)):
            compare(expected[key], actual[key], f"{path}.{key}", diffs, ignore, any_value)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            diffs.append(f"{path}: expected {expected!r}, got {actual!r}")
            return
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            compare(e, a, f"{path}[{i}]", diffs, ignore, any_value)
        return
    if expected != actual:
        diffs.append(f"{path}: expected {expected!r}, got {actual!r}")


def compare_headers(
    expected: dict[str, str],
    response: RawResponse,
    normalised: dict[str, str],
    diffs: list[str],
    ignore: frozenset[str],
) -> None:
    recorded = {
        k.lower(): v for k, v in expected.items() if not edge_only(k) and k.lower() not in _HOP_BY_HOP
    }
    sent: dict[str, str] = {}
    for name, value in response.headers:
        lname = name.lower()
        if lname not in _HOP_BY_HOP:
            sent[lname] = f"{sent[lname]}, {value}" if lname in sent else value
    lnormalised = {k.lower() for k in normalised}
    for name in sorted(set(recorded) | set(sent)):
        where = f"headers.{name}"
        if where in ignore:
            continue
        if name not in sent:
            diffs.append(f"{where}: missing (AWS: {recorded[name]!r})")
        elif name not in recorded:
            diffs.append(f"{where}: not sent by AWS (Portway: {sent[name]!r})")
        elif name not in lnormalised:
            compare(recorded[name], sent[name], where, diffs, ignore)


def run_checks(checks: list[dict[str, Any]], response: RawResponse, diffs: list[str]) -> None:
    for check in checks:
        value = response.header(check["header"])
        where = f"check {check}"
        if "lines" in check:  # each value on its own header line, in order
            lines = [v for n, v in response.headers if n.lower() == check["header"].lower()]
            if lines != check["lines"]:
                diffs.append(f"{where}: got the lines {lines!r}")
            continue
        if check.get("absent"):
            if value is not None:
                diffs.append(f"{where}: header present ({value!r})")
            continue
        if value is None:
            diffs.append(f"{where}: header missing")
            continue
        if "contains" in check and check["contains"] not in value:
            diffs.append(f"{where}: got {value!r}")
        if "part" in check:
            parts = value.split(check["split"])
            part = parts[check["part"]] if len(parts) > check["part"] else None
            if "equals" in check and part != check["equals"]:
                diffs.append(f"{where}: got {value!r}")
            if "not_equals" in check and (part is None or part == check["not_equals"]):
                diffs.append(f"{where}: got {value!r}")


def differences(case: dict[str, Any], response: RawResponse) -> list[str]:
    """Every way Portway's answer differs from the recording (empty: the case passes)."""
    expect = case["expect"]
    ignore = frozenset(case.get("ignore", ()))
    any_value = frozenset(expect.get("any_value", ()))
    diffs: list[str] = []
    if "status" in expect and response.status != expect["status"] and "status" not in ignore:
        diffs.append(f"status: expected {expect['status']}, got {response.status} ({response.body[:200]!r})")
    text = response.body.decode("utf-8", errors="replace")
    if "event" in expect:
        try:
            event = json.loads(text)
        except ValueError:
            diffs.append(f"event: the function's answer is not JSON: {text[:200]!r}")
        else:
            compare(expect["event"], event, "event", diffs, ignore, any_value)
    if "body" in expect:
        compare(expect["body"], text, "body", diffs, ignore, any_value)
    if "body_base64" in expect and base64.b64encode(response.body).decode() != expect["body_base64"]:
        diffs.append(
            f"body: expected the bytes of base64 {expect['body_base64']!r}, got {response.body[:60]!r}"
        )
    if "headers" in expect:
        compare_headers(expect["headers"], response, expect.get("normalised", {}), diffs, ignore)
    if "errorType" in expect and "errorType" not in ignore:
        compare(expect["errorType"], response.header("x-amzn-ErrorType"), "errorType", diffs, ignore)
    run_checks(expect.get("checks", []), response, diffs)
    return diffs
