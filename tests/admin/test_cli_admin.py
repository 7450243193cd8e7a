"""``portway keys|plans|usage`` against a gateway started by the test: in-process (the CLI runs
in a thread; it is synchronous) and once as a subprocess."""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.cli import main
from tests.admin.conftest import DECLARED_PLAN, TOKEN, Backend, Client, gateway_config


@pytest.fixture
async def cli_gateway(aiohttp_client: Client, backend: Backend, admin_env: None) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(gateway_config(backend, plans=(DECLARED_PLAN,))))


def admin_url(gateway: TestClient[Any, Any]) -> str:
    return f"http://127.0.0.1:{gateway.server.port}/@admin"


async def portway(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_keys_plans_usage_commands(
    cli_gateway: TestClient[Any, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = ["--url", admin_url(cli_gateway)]
    code, out, _ = await portway(capsys, "keys", "create", "alice", "--plan", "declared", *url)
    assert code == 0
    created = json.loads(out)
    assert created["enabled"] is True and created["usagePlanIds"] == ["declared"]
    value = created["value"]
    async with cli_gateway.get("/prod/pets", headers={"x-api-key": value}) as response:
        assert response.status == 200

    code, out, _ = await portway(capsys, "keys", "list", *url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ENABLED", "VALUE", "PLANS", "CUSTOMER"]
    assert lines[1].split()[:5] == [created["id"], "alice", "yes", value[:4] + "...", "declared"]

    assert (await portway(capsys, "keys", "disable", created["id"], *url))[0] == 0
    async with cli_gateway.get("/prod/pets", headers={"x-api-key": value}) as response:
        assert response.status == 403
    assert (await portway(capsys, "keys", "enable", created["id"], *url))[0] == 0
    code, out, _ = await portway(capsys, "keys", "rotate", created["id"], *url)
    new_value = json.loads(out)["value"]
    assert code == 0 and new_value != value
    async with cli_gateway.get("/prod/pets", headers={"x-api-key": new_value}) as response:
        assert response.status == 200

    plan_file = tmp_path / "gold.json"
    plan_file.write_text(
        json.dumps(
            {
                "id": "gold",
                "name": "Gold",
                "apiStages": [
                    {
                        "apiId": "petsid",
                        "stage": "dev",
                        "throttle": {"/pets/GET": {"rateLimit": 9, "burstLimit": 3}},
                    }
                ],
                "quota": {"limit": 50, "period": "WEEK"},
            }
        )
    )
    code, out, _ = await portway(capsys, "plans", "put", str(plan_file), *url)
    assert code == 0 and json.loads(out)["id"] == "gold"
    assert (await portway(capsys, "plans", "add-key", "gold", created["id"], *url))[0] == 0
    code, out, _ = await portway(capsys, "plans", "list", *url)
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "declared", "gold"]
    assert "50/week" in out
    code, out, _ = await portway(capsys, "plans", "show", "gold", *url)
    shown = json.loads(out)
    assert shown["apiStages"][0]["throttle"] == {"/pets/GET": {"rateLimit": 9.0, "burstLimit": 3}}
    assert [key["id"] for key in shown["keys"]] == [created["id"]]

    for _ in range(2):
        async with cli_gateway.get("/dev/pets", headers={"x-api-key": new_value}) as response:
            assert response.status == 200
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    code, out, _ = await portway(capsys, "usage", "gold", "--from", today, "--to", today, *url)
    assert code == 0
    assert json.loads(out) == {
        "usagePlanId": "gold",
        "startDate": today,
        "endDate": today,
        "items": {created["id"]: [[2, 48]]},
    }
    code, out, _ = await portway(
        capsys, "usage", "gold", "--from", today, "--to", today, "--key", created["id"], *url
    )
    assert json.loads(out)["items"] == {created["id"]: [[2, 48]]}

    assert (await portway(capsys, "plans", "remove-key", "gold", created["id"], *url))[0] == 0
    assert (await portway(capsys, "plans", "delete", "gold", *url))[0] == 0
    assert (await portway(capsys, "keys", "delete", created["id"], *url))[0] == 0
    code, out, _ = await portway(capsys, "keys", "list", "--json", *url)
    assert json.loads(out) == {"items": []}


async def test_import_and_errors(
    cli_gateway: TestClient[Any, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = ["--url", admin_url(cli_gateway)]
    csv_file = tmp_path / "keys.csv"
    csv_file.write_text('Name,Key,UsagePlanIds\none,importedKey0123456789abcdef,"declared"\ntwo,bad,\n')
    code, out, _ = await portway(capsys, "keys", "import", str(csv_file), *url)
    assert code == 0
    result = json.loads(out)
    assert len(result["ids"]) == 1 and result["warnings"] == [
        "line 3: Key: an API key value is 20 to 128 letters and digits"
    ]
    code, out, err = await portway(capsys, "keys", "import", str(csv_file), "--fail-on-warnings", *url)
    assert code == 1 and out == "" and err.startswith("portway: BadRequestException: line 3:")
    code, _, err = await portway(capsys, "plans", "show", "nosuchplan", *url)
    # AWS's message names no id (recorded: LocalStack test_usage_plan_crud, update-wrong-id).
    assert code == 1 and err == "portway: NotFoundException: Invalid Usage Plan ID specified\n"
    code, _, err = await portway(capsys, "keys", "import", str(tmp_path / "missing.csv"), *url)
    assert code == 1 and "missing.csv" in err


async def test_credentials_from_the_environment(
    cli_gateway: TestClient[Any, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTWAY_ADMIN_URL", admin_url(cli_gateway))
    # No token: the CLI signs with SigV4 (the gateway's region is us-east-1).
    monkeypatch.delenv("PORTWAY_ADMIN_TOKEN")
    code, out, _ = await portway(capsys, "plans", "list", "--json")
    assert code == 0 and [plan["id"] for plan in json.loads(out)["items"]] == ["declared"]
    code, _, err = await portway(capsys, "plans", "list", "--region", "eu-west-1")
    assert code == 1 and err.startswith("portway: InvalidSignatureException:")
    monkeypatch.delenv("PORTWAY_ADMIN_ACCESS_KEY_ID")
    code, _, err = await portway(capsys, "plans", "list")
    assert code == 1 and err == "portway: MissingAuthenticationTokenException: Missing Authentication Token\n"
    monkeypatch.setenv("PORTWAY_ADMIN_TOKEN", "wrong")
    code, _, err = await portway(capsys, "keys", "list")
    assert code == 1 and "UnrecognizedClientException" in err


async def test_unreachable_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await portway(capsys, "keys", "list", "--url", "http://127.0.0.1:1/@admin")
    assert code == 1 and err.startswith("portway: ConnectionError: cannot reach http://127.0.0.1:1/@admin")


async def test_cli_as_a_subprocess(cli_gateway: TestClient[Any, Any]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "keys",
        "create",
        "sub",
        "--url",
        admin_url(cli_gateway),
        env={"PORTWAY_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(Path(__file__).parents[2])},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["name"] == "sub"
