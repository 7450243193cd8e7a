"""Worker processes get Lambda's environment, never the gateway's settings (issue 11 item 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from routes.integrations.lambda_env import pass_env_names
from routes.integrations.python_workers import WorkerPoolInvoker
from server.cli import main
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteConfig,
    StageConfig,
)
from tests.runtime.serve import serving

HANDLERS = Path(__file__).parent / "handlers"
GATEWAY_SECRETS = {
    "PORTWAY_ADMIN_TOKEN": "admin-token-secret",
    "PORTWAY_ADMIN_SECRET_ACCESS_KEY": "admin-sigv4-secret",
    "PORTWAY_REDIS_URL": "redis://:password@127.0.0.1:6379/0",
    "DATABASE_PASSWORD": "unrelated-shell-secret",
}


async def environ_of(**kwargs: object) -> dict[str, str]:
    invoker = WorkerPoolInvoker(
        handler="rt_env.environ",
        code_dir=HANDLERS,
        function_name="env-fn",
        region="eu-west-1",
        account_id="111122223333",
        memory_mb=256,
        **kwargs,  # type: ignore[arg-type]
    )
    try:
        result: dict[str, str] = await invoker.invoke_event({}, request_id="r1", timeout_s=10.0)
    finally:
        await invoker.close()
    return result


async def test_gateway_secrets_never_reach_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GATEWAY_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("OPERATOR_CHOICE", "passed")
    env = await environ_of(
        environment={"TABLE": "todos", "TZ": "Europe/Paris"}, pass_env=("OPERATOR_CHOICE",)
    )
    leaked = [name for name in env if name.startswith("PORTWAY_") or name in GATEWAY_SECRETS]
    assert leaked == []
    assert not set(GATEWAY_SECRETS.values()) & set(env.values())
    # Lambda's reserved variables.
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env-fn"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/env-fn"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].startswith(("20", "21"))
    assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS) and env["_HANDLER"] == "rt_env.environ"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["TZ"] == "Europe/Paris"  # TZ (default :UTC) is not reserved on Lambda: the function's wins
    assert {"LAMBDA_RUNTIME_DIR", "LANG", "PATH"} <= set(env)
    # The function's environment, and what the operator passes on purpose.
    assert env["TABLE"] == "todos" and env["OPERATOR_CHOICE"] == "passed"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIDEXAMPLE" and env["AWS_SECRET_ACCESS_KEY"] == "operator-secret"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:8000"


async def test_placeholder_credentials_without_the_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    env = await environ_of()
    assert env["AWS_ACCESS_KEY_ID"] == "PORTWAYLOCAL" and env["AWS_SECRET_ACCESS_KEY"]
    assert env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8"


def test_pass_env_names() -> None:
    assert pass_env_names(["A", "B"], "C, A,,D") == ("A", "B", "C", "D")
    assert pass_env_names([], None) == ()
    with pytest.raises(ValueError, match="PORTWAY_ADMIN_TOKEN"):
        pass_env_names(["PORTWAY_ADMIN_TOKEN"], None)
    with pytest.raises(ValueError, match="PORTWAY_REDIS_URL"):
        pass_env_names([], "PORTWAY_REDIS_URL")


async def test_pass_env_reaches_workers_through_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_CHOICE", "passed")
    monkeypatch.setenv("NOT_CHOSEN", "kept back")
    monkeypatch.setenv("PORTWAY_ADMIN_TOKEN", "admin-token-secret")
    integration = IntegrationConfig(
        type=IntegrationType.PYTHON, handler="rt_env.proxy", code_dir=HANDLERS, function_name="env-fn"
    )
    api = ApiConfig(
        name="env",
        id="envid",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(RouteConfig(method="GET", path="/env", integration=integration),),
    )
    async with serving(GatewayConfig(apis=(api,)), pass_env=("OPERATOR_CHOICE",)) as client:
        env = await (await client.get("/dev/env")).json()
    assert env["OPERATOR_CHOICE"] == "passed"
    assert "NOT_CHOSEN" not in env and "PORTWAY_ADMIN_TOKEN" not in env


def test_serve_refuses_to_pass_gateway_settings(capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(__file__).parent / "projects" / "logs" / "serverless.yml"
    assert main(["serve", str(config), "--pass-env", "PORTWAY_ADMIN_TOKEN"]) == 2
    assert "gateway settings are never passed to handlers: PORTWAY_ADMIN_TOKEN" in capsys.readouterr().err
