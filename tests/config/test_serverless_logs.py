"""serverless.yml ``provider.logs.restApi`` / ``logs.httpApi``: the APIs' access log formats."""

from __future__ import annotations

from pathlib import Path

from server.config.model import ApiKind, GatewayConfig
from server.config.serverless_logs import DEFAULT_REST_FORMAT
from tests.config.test_serverless import load, problems

SERVICE = """\
service: logged
provider:
  name: aws
  runtime: python3.12
  logs:
{logs}
functions:
  f:
    handler: handler.f
    events:
      - http: GET /a
      - httpApi: GET /b
"""


def formats(config: GatewayConfig) -> dict[ApiKind, str | None]:
    return {api.kind: api.access_log_format for api in config.apis}


def test_true_is_the_framework_default_and_format_sets_one(tmp_path: Path) -> None:
    logs = "    restApi: true\n    httpApi:\n      format: '$context.requestId $context.status'\n"
    assert formats(load(tmp_path, SERVICE.format(logs=logs))) == {
        ApiKind.REST: DEFAULT_REST_FORMAT,
        ApiKind.HTTP: "$context.requestId $context.status",
    }


def test_access_logging_false_turns_the_format_off(tmp_path: Path) -> None:
    logs = "    restApi:\n      accessLogging: false\n      format: '$context.requestId'\n"
    assert formats(load(tmp_path, SERVICE.format(logs=logs))) == {ApiKind.REST: None, ApiKind.HTTP: None}


def test_a_format_aws_would_refuse_is_an_error(tmp_path: Path) -> None:
    logs = "    httpApi:\n      format: '$context.status'\n"
    [(location, message)] = problems(tmp_path, SERVICE.format(logs=logs))
    assert location == "provider.logs.httpApi.format"
    assert "$context.requestId" in message
