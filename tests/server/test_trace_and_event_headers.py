"""X-Amzn-Trace-Id continuation (server/trace.py) and the Lambda event's header rewrite
(server/event_headers.py); aws-contract.md §0.2 "Trace header" and §2.3 "Lambda event headers"."""

from __future__ import annotations

import re

from server.event_headers import lambda_event_headers
from server.messages import HttpRequest
from server.trace import trace_header

NOW_MS = 1_700_000_000_000


def test_new_trace_has_the_xray_shape() -> None:
    value = trace_header(None, NOW_MS)
    assert re.fullmatch(r"Root=1-6553f100-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", value)
    assert trace_header(None, NOW_MS) != value


def test_caller_trace_is_continued() -> None:
    full = "Root=1-3152b799-8954dae64eda91bc9a23a7e8;Parent=7fa8c0f79203be72;Sampled=1"
    assert trace_header(full, NOW_MS) == full
    small = trace_header("Root=1-3152b799-8954dae64eda91bc9a23a7e8", NOW_MS)
    root, parent, sampled = small.split(";")
    assert root == "Root=1-3152b799-8954dae64eda91bc9a23a7e8"
    assert re.fullmatch(r"Parent=[0-9a-f]{16}", parent) and sampled == "Sampled=0"
    # Not a trace: a new root.
    assert trace_header("garbage", NOW_MS).startswith("Root=1-6553f100-")


def _request(
    headers: list[tuple[str, str]], *, host: str = "127.0.0.1:3000", scheme: str = "http"
) -> HttpRequest:
    return HttpRequest("POST", "/dev/x", "", tuple(headers), b"{}", "10.0.0.7", host, scheme=scheme)


def test_event_headers_rewritten_as_aws_does() -> None:
    req = _request(
        [
            ("Host", "127.0.0.1:3000"),
            ("aUThorization", "Bearer t"),
            ("Connection", "keep-alive"),
            ("Content-Length", "2"),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-amzn-trace-id", "Root=1-3152b799-8954dae64eda91bc9a23a7e8"),
            ("tEsT-HEADeR", "aValUE"),
        ]
    )
    headers = dict(lambda_event_headers(req, "Root=1-x;Parent=y;Sampled=0"))
    assert headers == {
        "Host": "127.0.0.1:3000",
        "Authorization": "Bearer t",
        "tEsT-HEADeR": "aValUE",
        "X-Amzn-Trace-Id": "Root=1-x;Parent=y;Sampled=0",
        "X-Forwarded-For": "192.0.2.1, 10.0.0.7",
        "X-Forwarded-Port": "3000",
        "X-Forwarded-Proto": "http",
    }


def test_payload_v2_keeps_content_length_and_websocket_drops_upgrade() -> None:
    req = _request([("Content-Length", "2"), ("Upgrade", "websocket"), ("Connection", "Upgrade")])
    assert ("Content-Length", "2") in lambda_event_headers(req, "t", payload_v2=True)
    names = [n for n, _ in lambda_event_headers(req, "t", websocket=True)]
    assert "Upgrade" not in names and "Connection" not in names and "Content-Length" not in names


def test_forwarded_port_defaults_from_the_scheme() -> None:
    assert ("X-Forwarded-Port", "443") in lambda_event_headers(
        _request([], host="api.example.com", scheme="https"), "t"
    )
    assert ("X-Forwarded-Port", "8443") in lambda_event_headers(_request([], host="[::1]:8443"), "t")


def test_rest_event_drops_content_length_http_api_events_keep_it() -> None:
    from server.events import RequestInfo, http_v2_event, rest_v1_event

    req = _request([("Content-Length", "2"), ("Connection", "keep-alive"), ("authorization", "t")])
    info = RequestInfo(
        request=req,
        api_id="a",
        account_id="1",
        stage="dev",
        stage_prefix="/dev",
        path="/x",
        resource="/x",
        route_key="POST /x",
        path_parameters={},
        stage_variables={},
        request_id="r",
        extended_request_id="e",
        now_ms=NOW_MS,
        trace_id="Root=1-6553f100-000000000000000000000000;Parent=0000000000000000;Sampled=0",
    )
    rest = rest_v1_event(info)["headers"]
    assert "Content-Length" not in rest and "Connection" not in rest and rest["Authorization"] == "t"
    assert rest_v1_event(info, http_api_v1=True)["headers"]["Content-Length"] == "2"
    v2 = http_v2_event(info)["headers"]
    assert v2["content-length"] == "2" and "connection" not in v2
    assert v2["x-amzn-trace-id"] == info.trace_id and v2["x-forwarded-for"] == "10.0.0.7"
