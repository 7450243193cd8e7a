"""Fail closed: every way a serverless.yml can ask for authentication that Portway does not
enforce is a load-time error with its location, for ``validate`` and ``serve`` alike: never a
route served open."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.config.serverless_auth import UNENFORCED_AUTHORIZER
from tests.config.test_serverless import problems

_POOL = "arn:aws:cognito-idp:us-east-1:1:userpool/p"
# Lambda authorizers (REST http.authorizer, httpApi type: request, websocket $connect) are
# enforced now: tests/config/test_serverless_authorizers.py.
_ROUTES = {
    "rest-iam": "- http: {path: a, method: get, authorizer: aws_iam}",
    "rest-arn": "- http: {path: a, method: get, authorizer: {arn: '" + _POOL + "'}}",
    "http-api": "- httpApi: {path: /a, method: get, authorizer: {name: jwt}}",
}


def _document(event: str) -> str:
    return f"""
        service: app
        provider: {{name: aws}}
        functions:
          auth:
            handler: handler.auth
          f:
            handler: handler.f
            events:
              {event}
        """


@pytest.mark.parametrize("event", list(_ROUTES.values()), ids=list(_ROUTES))
def test_a_route_with_an_authorizer_is_refused(tmp_path: Path, event: str) -> None:
    found = problems(tmp_path, _document(event))
    kind = event.split(":")[0].lstrip("- ")
    assert (f"functions.f.events[0].{kind}.authorizer", UNENFORCED_AUTHORIZER) in found


@pytest.mark.parametrize("where", ["apiGateway: {resourcePolicy: [{Effect: Deny}]}", "resourcePolicy: [{}]"])
def test_a_resource_policy_is_refused(tmp_path: Path, where: str) -> None:
    found = problems(
        tmp_path,
        f"""
        service: app
        provider:
          name: aws
          {where}
        functions:
          f:
            handler: handler.f
            events:
              - http: {{path: a, method: get}}
        """,
    )
    assert [message for _, message in found] == [
        "resource policies cannot be enforced by this version of Portway"
    ]


@pytest.mark.parametrize("command", ["validate", "serve"])
def test_validate_and_serve_both_refuse(tmp_path: Path, command: str) -> None:
    config = tmp_path / "serverless.yml"
    config.write_text(textwrap.dedent(_document(_ROUTES["rest-iam"])))
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    args = [sys.executable, "-m", "server", command, str(config)]
    if command == "serve":
        args += ["--port", "0"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert "functions.f.events[0].http.authorizer" in done.stderr + done.stdout
    assert "serving" not in done.stdout.lower()
