"""Fail closed: every way a serverless.yml can ask for authentication that Portway does not
enforce is a load-time error with its location, for ``validate`` and ``serve`` alike: never a
route served open."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.config.model import AuthorizerType
from server.config.serverless_auth import UNENFORCED_AUTHORIZER
from tests.config.test_serverless import load, problems

# Lambda authorizers (REST http.authorizer, httpApi type: request, websocket $connect) are enforced
# (tests/config/test_serverless_authorizers.py), and so are aws_iam (tests/config/test_iam_config.py),
# Cognito ARNs (REST) and httpApi jwt authorizers (tests/config/test_serverless_jwt.py).
_ROUTES = {
    "http-api-undeclared": "- httpApi: {path: /a, method: get, authorizer: {name: nowhere}}",
}


def _document(event: str) -> str:
    return f"""
        service: app
        provider:
          name: aws
          httpApi:
            authorizers:
              custom: {{type: request, functionName: auth}}
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
    assert [location for location, _ in found] == [f"functions.f.events[0].{kind}.authorizer"]


@pytest.mark.parametrize(
    "event",
    [
        "- http: {path: a, method: get, authorizer: aws_iam}",
        "- http: {path: a, method: get, authorizer: {type: aws_iam}}",
        "- httpApi: {path: /a, method: get, authorizer: {type: aws_iam}}",
    ],
)
def test_aws_iam_routes_are_enforced(tmp_path: Path, event: str) -> None:
    (route,) = [route for api in load(tmp_path, _document(event)).apis for route in api.routes]
    assert route.authorizer is not None and route.authorizer.type is AuthorizerType.AWS_IAM


def test_aws_iam_on_a_websocket_connect_is_refused(tmp_path: Path) -> None:
    # Serverless Framework has no aws_iam form for websocket events: refuse, never serve open.
    found = problems(tmp_path, _document("- websocket: {route: $connect, authorizer: aws_iam}"))
    assert ("functions.f.events[0].websocket.authorizer", UNENFORCED_AUTHORIZER) in found


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "[{Effect: Allow, Principal: '*', Action: 'execute-api:Invoke', Resource: '*', "
            "Condition: {StringEquals: {'aws:SourceVpce': vpce-1}}}]",
            "condition key 'aws:SourceVpce' is not supported",
        ),
        ("[{Effect: Allow, Action: 'execute-api:Invoke', Resource: '*'}]", "needs a Principal"),
        ("[{Effect: Deny}]", "exactly one of Action and NotAction"),
    ],
)
def test_a_resource_policy_that_cannot_be_enforced_is_refused(
    tmp_path: Path, policy: str, message: str
) -> None:
    found = problems(
        tmp_path,
        f"""
        service: app
        provider:
          name: aws
          apiGateway: {{resourcePolicy: {policy}}}
        functions:
          f:
            handler: handler.f
            events:
              - http: {{path: a, method: get}}
        """,
    )
    assert [where for where, _ in found] == ["provider.apiGateway.resourcePolicy"]
    assert message in found[0][1]


@pytest.mark.parametrize("command", ["validate", "serve"])
def test_validate_and_serve_both_refuse(tmp_path: Path, command: str) -> None:
    config = tmp_path / "serverless.yml"
    config.write_text(textwrap.dedent(_document(_ROUTES["http-api-undeclared"])))
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    args = [sys.executable, "-m", "server", command, str(config)]
    if command == "serve":
        args += ["--port", "0"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert "functions.f.events[0].httpApi.authorizer" in done.stderr + done.stdout
    assert "serving" not in done.stdout.lower()
