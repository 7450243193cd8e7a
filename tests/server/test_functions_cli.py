"""``portway invoke`` (like ``serverless invoke local``) and ``portway events`` (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main

SERVERLESS = """\
service: clidemo
frameworkVersion: "3"
provider:
  name: aws
  runtime: python3.11
  environment: {GREETING: hello}
functions:
  echo:
    handler: handler.echo
    events:
      - httpApi: GET /hello/{name}
      - http: POST /items
  chat:
    handler: handler.echo
    events:
      - websocket: $default
  boom:
    handler: handler.boom
    events:
      - httpApi: GET /boom
"""

HANDLER = """\
import os


def echo(event, context):
    return {"event": event, "greeting": os.environ.get("GREETING"), "function": context.function_name}


def boom(event, context):
    raise ValueError("no good")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "serverless.yml").write_text(SERVERLESS)
    (tmp_path / "handler.py").write_text(HANDLER)
    return tmp_path / "serverless.yml"


def invoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_invoke_with_data_as_the_event(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(capsys, "invoke", "echo", "--config", str(project), "--data", '{"x": 1}')
    assert code == 0
    assert json.loads(out) == {"event": {"x": 1}, "greeting": "hello", "function": "clidemo-dev-echo"}


def test_invoke_from_a_file_and_by_full_name(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "event.json").write_text('{"from": "file"}')
    code, out = invoke(
        capsys, "invoke", "clidemo-dev-echo", "--config", str(project), "--path", str(tmp_path / "event.json")
    )
    assert code == 0 and json.loads(out)["event"] == {"from": "file"}


def test_invoke_with_an_http_api_event(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(
        capsys, "invoke", "echo", "--config", str(project), "--event-shape", "http", "--data", '{"a": 1}'
    )
    event = json.loads(out)["event"]
    assert code == 0
    assert (event["version"], event["routeKey"], event["rawPath"]) == (
        "2.0",
        "GET /hello/{name}",
        "/hello/name",
    )
    assert event["pathParameters"] == {"name": "name"} and event["body"] == '{"a": 1}'
    assert event["requestContext"]["http"]["method"] == "GET"


def test_invoke_with_a_rest_event(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(
        capsys, "invoke", "echo", "--config", str(project), "--event-shape", "rest", "--data", "{}"
    )
    event = json.loads(out)["event"]
    assert code == 0
    assert (event["httpMethod"], event["resource"], event["path"], event["body"]) == (
        "POST",
        "/items",
        "/items",
        "{}",
    )
    assert event["requestContext"]["stage"] == "dev" and "version" not in event


def test_invoke_with_a_websocket_event(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(
        capsys, "invoke", "chat", "--config", str(project), "--event-shape", "ws", "--data", '{"m": 1}'
    )
    event = json.loads(out)["event"]
    assert code == 0
    assert (
        event["requestContext"]["routeKey"] == "$default"
        and event["requestContext"]["eventType"] == "MESSAGE"
    )
    assert event["body"] == '{"m": 1}'


def test_invoke_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(capsys, "invoke", "boom", "--config", str(project))
    assert code == 1
    assert json.loads(out)["errorType"] == "ValueError" and json.loads(out)["errorMessage"] == "no good"
    assert main(["invoke", "nope", "--config", str(project)]) == 2
    assert "functions: clidemo-dev-boom, clidemo-dev-chat, clidemo-dev-echo" in capsys.readouterr().err
    assert main(["invoke", "echo", "--config", str(project), "--event-shape", "ws"]) == 2
    assert main(["invoke", "echo", "--config", str(project), "--data", "{not json"]) == 2


def test_events_prints_one_sample_per_route(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(capsys, "events", "--config", str(project))
    events = json.loads(out)
    assert code == 0
    assert sorted(events) == [
        "clidemo POST /items",
        "clidemo-httpApi GET /boom",
        "clidemo-httpApi GET /hello/{name}",
        "dev-clidemo-websockets $default",
    ]
    assert events["clidemo POST /items"]["httpMethod"] == "POST"
    assert events["dev-clidemo-websockets $default"]["requestContext"]["eventType"] == "MESSAGE"


def test_sample_events_module_is_pure_core() -> None:
    forbidden = ("aiohttp", "asyncio", "socket", "subprocess", "uvloop", "redis")
    code = (
        "import sys, importlib; importlib.import_module('server.sample_events'); "
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
