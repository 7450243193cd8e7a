"""The admin API's recorded cases (cases/admin_api.json): AWS's ``apigateway`` control plane for
API keys and usage plans, called with boto3 as LocalStack's AWS-validated tests called AWS.

Each case runs its steps on a fresh gateway (portway.yaml, embedded store); the last step's answer
(result or error) is compared with the recording by the rules of harness.py. botocore's
``datetime`` values are compared as the snapshot tool recorded them, as the word ``datetime``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from botocore.exceptions import ClientError

from server.app import create_app
from server.config.load import load_config
from server.config.model import GatewayConfig
from tests.admin.conftest import Boto, Client, admin_env, boto_client
from tests.conformance.harness import Case, compare, load_cases

HERE = Path(__file__).parent
ADMIN_CASES = [case for case in load_cases() if case.runner == "admin"]
_REF = re.compile(r"\$\{([^}]+)\}")

__all__ = ["admin_env"]  # the fixture, imported for its side effect on the environment


@pytest.fixture(scope="module")
def config() -> GatewayConfig:
    return load_config(HERE / "portway.yaml")


def _normal(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _resolve(value: Any, saved: dict[str, Any], config: GatewayConfig) -> Any:
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref.startswith("api:"):
                return next(api.id for api in config.apis if api.name == ref[4:])
            name, _, field = ref.partition(".")
            return str(saved[name][field])

        return _REF.sub(one, value)
    if isinstance(value, dict):
        return {k: _resolve(v, saved, config) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, saved, config) for v in value]
    return value


async def _http(gateway: TestClient[Any, Any], params: dict[str, Any], status: int) -> int:
    """A data-plane request, repeated until it gets ``status`` or 5 s pass (AWS needed retries too:
    a key change reaches the data plane asynchronously). Returns the last status."""
    async with asyncio.timeout(5):
        while True:
            response = await gateway.request(params["method"], params["path"], headers=params["headers"])
            got = response.status
            response.release()
            if got == status:
                return got
            await asyncio.sleep(0.05)


async def _run(
    boto: Boto, gateway: TestClient[Any, Any], case: Case, config: GatewayConfig
) -> dict[str, Any]:
    saved: dict[str, Any] = {}
    answer: dict[str, Any] = {}
    for step in case.data["steps"]:
        params = _resolve(step["params"], saved, config)
        if step["op"] == "@http":
            try:
                answer = {"status": await _http(gateway, params, step["status"])}
            except TimeoutError:
                answer = {"status": f"no {step['status']} within 5 s"}
            continue
        try:
            answer = await getattr(boto, step["op"])(**params)
        except ClientError as exc:
            answer = dict(exc.response)
        if "save" in step:
            saved[step["save"]] = answer
    return _normal(answer)


@pytest.mark.parametrize("case", ADMIN_CASES, ids=[c.id for c in ADMIN_CASES])
async def test_recorded_admin_case(
    case: Case, config: GatewayConfig, aiohttp_client: Client, admin_env: None
) -> None:
    gateway: TestClient[Any, Any] = await aiohttp_client(create_app(config))
    answer = await _run(boto_client(gateway), gateway, case, config)
    source = case.data["source"]
    if "expect_http" in case.data:  # the last step was a data-plane request
        assert answer == case.data["expect_http"], f"{case.id} ({source['file']} {source['key']}): {answer}"
        return
    expected = json.loads(json.dumps(case.data["expect"]))
    expected_status = expected.pop("ResponseMetadata")["HTTPStatusCode"]
    status = answer.pop("ResponseMetadata", {}).get("HTTPStatusCode")
    diffs: list[str] = []
    if status != expected_status:
        diffs.append(f"status: expected {expected_status}, got {status}")
    compare(expected, answer, "", diffs, frozenset(f".{p}" for p in case.data.get("ignore", ())))
    assert not diffs, f"{case.id} ({source['file']} {source['key']}):\n  " + "\n  ".join(diffs)
