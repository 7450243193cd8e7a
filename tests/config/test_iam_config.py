"""The access-control settings in both formats: iam credentials, management, trustedProxies,
resourcePolicy (server/config/iam.py), and what is refused (fail closed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.auth.policy import Decision
from server.auth.resource_policy import RequestFacts, decide
from server.config.load import load_config
from server.config.model import LOOPBACK_NETWORKS, GatewayConfig
from tests.config.test_native_errors import problems, routes_doc

ROUTES = "      GET /x: pets.a\n"
KEY = """iam:
  credentials:
    - accessKeyId: AKIDONE
      secretAccessKeyEnv: ONE_SECRET
      user: one
      arn: arn:aws:iam::111122223333:user/one
      policy: [{Effect: Allow, Action: 'execute-api:*', Resource: '*'}]
"""


def load(tmp_path: Path, text: str, name: str = "portway.yaml") -> GatewayConfig:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    (tmp_path / "pets.py").write_text("def a(event, context):\n    return {}\n")
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    return load_config(path)


def test_native_defaults_are_loopback_and_no_keys(tmp_path: Path) -> None:
    config = load(tmp_path, routes_doc(ROUTES))
    assert config.iam_credentials == () and config.trusted_proxies == ()
    assert config.management.auth == "none" and config.management.allow_networks == LOOPBACK_NETWORKS


def test_native_iam_management_proxies_and_resource_policy(tmp_path: Path) -> None:
    api = (
        "    resourcePolicy: [{Effect: Deny, Principal: '*', Action: 'execute-api:Invoke', Resource: '*',\n"
        "                      Condition: {NotIpAddress: {'aws:SourceIp': [10.0.0.0/8]}}}]\n"
    )
    text = (
        routes_doc(ROUTES, api)
        + KEY
        + "management: {allowNetworks: [10.0.0.0/8]}\ntrustedProxies: [10.0.0.1]\n"
    )
    config = load(tmp_path, text)
    (key,) = config.iam_credentials
    assert (key.access_key_id, key.secret_env, key.user, key.arn) == (
        "AKIDONE",
        "ONE_SECRET",
        "one",
        "arn:aws:iam::111122223333:user/one",
    )
    # With keys, a wider network defaults to requiring signatures.
    assert config.management.auth == "iam" and config.management.allow_networks == ("10.0.0.0/8",)
    assert config.trusted_proxies == ("10.0.0.1",)
    policy = config.apis[0].resource_policy
    assert policy is not None
    arn = "arn:aws:execute-api:us-east-1:1:a/dev/GET/x"
    assert decide(policy, RequestFacts("192.0.2.1", False), "execute-api:Invoke", arn) is Decision.DENY
    assert decide(policy, RequestFacts("10.1.1.1", False), "execute-api:Invoke", arn) is Decision.NONE


@pytest.mark.parametrize(
    ("extra", "where", "fragment"),
    [
        (
            "management: {auth: none, allowNetworks: [0.0.0.0/0]}\n",
            "management.allowNetworks",
            "only with a signature",
        ),
        ("management: {allowNetworks: [10.0.0.0/8]}\n", "management.allowNetworks", "only with a signature"),
        ("management: {auth: iam}\n", "management.auth", "needs at least one access key"),
        ("management: {allowNetworks: [nope]}\n", "management.allowNetworks", "does not appear to be"),
        ("trustedProxies: [300.1.1.1]\n", "trustedProxies", "does not appear to be"),
        (
            "iam: {credentials: [{accessKeyId: AKID, secretAccessKey: s, secretAccessKeyEnv: E,\n"
            "  policy: []}]}\n",
            "iam.credentials[0]",
            "exactly one of secretAccessKeyEnv",
        ),
        (
            "iam: {credentials: [{accessKeyId: AKID, secretAccessKeyEnv: E}]}\n",
            "iam.credentials[0].policy",
            "needs a policy",
        ),
        (
            "iam: {credentials: [{accessKeyId: AKID, secretAccessKeyEnv: E, policy: [{Effect: Maybe}]}]}\n",
            "iam.credentials[0].policy",
            "Effect must be Allow or Deny",
        ),
    ],
)
def test_native_refusals(tmp_path: Path, extra: str, where: str, fragment: str) -> None:
    found = problems(tmp_path, routes_doc(ROUTES) + extra)
    assert any(location == where and fragment in message for location, message in found), found


def test_loopback_only_management_without_signatures_is_fine(tmp_path: Path) -> None:
    config = load(
        tmp_path, routes_doc(ROUTES) + "management: {auth: none, allowNetworks: [127.0.0.1/32, '::1']}\n"
    )
    assert config.management.allow_networks == ("127.0.0.1/32", "::1")


def test_a_websocket_api_resource_policy_is_refused(tmp_path: Path) -> None:
    text = (
        "portway: 1\napis:\n  - name: chat\n    type: websocket\n"
        "    resourcePolicy: [{Effect: Allow, Principal: '*', Action: '*', Resource: '*'}]\n"
        "    routes:\n      $default: pets.a\n"
    )
    assert ("apis[0].resourcePolicy", "resource policies apply to REST and HTTP APIs") in problems(
        tmp_path, text
    )


def test_serverless_custom_portway_and_resource_policy(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: app
        provider:
          name: aws
          apiGateway:
            resourcePolicy:
              - Effect: Allow
                Principal: '*'
                Action: execute-api:Invoke
                Resource: execute-api:/*
                Condition: {IpAddress: {aws:SourceIp: [127.0.0.1]}}
        custom:
          portway:
            iam:
              credentials:
                - accessKeyId: AKIDTWO
                  secretAccessKeyEnv: TWO
                  policy: [{Effect: Allow, Action: '*', Resource: '*'}]
            management: {auth: iam, allowNetworks: [10.0.0.0/8]}
            trustedProxies: [10.0.0.2/32]
        functions:
          f:
            handler: handler.f
            events:
              - http: {path: a, method: get}
        """,
        name="serverless.yml",
    )
    assert [key.access_key_id for key in config.iam_credentials] == ["AKIDTWO"]
    assert config.management.auth == "iam" and config.trusted_proxies == ("10.0.0.2/32",)
    policy = config.apis[0].resource_policy
    assert policy is not None
    # execute-api:/* is this API's ARN prefix (AWS expands it on import).
    arn = f"arn:aws:execute-api:us-east-1:123456789012:{config.apis[0].id}/dev/GET/a"
    assert decide(policy, RequestFacts("127.0.0.1", False), "execute-api:Invoke", arn) is Decision.ALLOW
    assert decide(policy, RequestFacts("127.0.0.2", False), "execute-api:Invoke", arn) is Decision.NONE


def test_an_unset_secret_variable_warns_on_validate_and_stops_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import main

    monkeypatch.delenv("ONE_SECRET", raising=False)
    path = tmp_path / "portway.yaml"
    path.write_text(routes_doc(ROUTES) + KEY)
    (tmp_path / "pets.py").write_text("def a(event, context):\n    return {}\n")
    assert main(["validate", str(path)]) == 0
    message = "iam.credentials AKIDONE: environment variable ONE_SECRET (secretAccessKeyEnv) is not set"
    assert f"warning: {message}" in capsys.readouterr().err
    assert main(["serve", str(path), "--port", "0"]) == 1  # fails closed before listening
    captured = capsys.readouterr()
    assert f"portway: {message}" in captured.err and "Traceback" not in captured.err + captured.out
