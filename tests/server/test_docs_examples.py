"""What the README, docs and example scripts tell a newcomer holds: links, commands, statuses."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
import shlex
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.load import load_config
from server.config.model import IntegrationType, Isolation

ROOT = Path(__file__).resolve().parents[2]
Client = Callable[..., Awaitable[TestClient[Any, Any]]]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "examples").rglob("*.md")),
]


def test_every_referenced_document_exists() -> None:
    """`deploy/docker-compose.yml` once pointed at a docs/deployment.md that did not exist."""
    sources = [
        *DOCUMENTS,
        ROOT / "Dockerfile",
        *sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
        ROOT / "scripts/example.sh",
    ]
    missing = []
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for name in re.findall(r"\bdocs/[\w.-]+\.md\b", text):
            if not (ROOT / name).is_file():
                missing.append(f"{source.relative_to(ROOT)}: {name}")
        if source.suffix == ".md":  # relative Markdown links: [text](path#anchor)
            for target in re.findall(r"\]\((?!https?://|#)([^)#\s]+)", text):
                if not (source.parent / target).exists():
                    missing.append(f"{source.relative_to(ROOT)}: {target}")
    assert missing == []


def test_readme_chat_commands_pass_distinct_names() -> None:
    """Two clients both called `guest` cannot tell whose message is whose."""
    spec = importlib.util.spec_from_file_location("chat_client", ROOT / "examples" / "chat" / "client.py")
    assert spec is not None and spec.loader is not None
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    parameters = list(inspect.signature(client.chat).parameters)
    assert parameters == ["url", "name", "room"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        shlex.split(line.partition("#")[0])
        for line in readme.splitlines()
        if "examples/chat/client.py" in line
    ]
    assert len(commands) >= 2
    names = []
    for words in commands:
        arguments = words[words.index("examples/chat/client.py") + 1 :]
        assert len(arguments) == len(parameters), words  # url, name, room
        names.append(arguments[1])
    assert len(set(names)) == len(names), names


def test_example_script_announces_every_step() -> None:
    """The first run takes minutes: each step says what it does, and the long install is not quiet."""
    lines = [line.strip() for line in (ROOT / "scripts/example.sh").read_text().splitlines()]
    commands = [i for i, line in enumerate(lines) if re.search(r"-m (venv|pip)\b|portway serve", line)]
    assert len(commands) == 4
    for index in commands:
        previous = next(line for line in reversed(lines[:index]) if line and not line.startswith("#"))
        assert previous.startswith("step "), lines[index]
    install = next(line for line in lines if "pip install" in line and ". boto3" in line)
    assert " -q" not in install


def test_chat_handlers_run_in_process_isolation_as_documented() -> None:
    for name in ("portway.yaml", "serverless.yml"):
        config = load_config(ROOT / "examples" / "chat" / name, env={})
        isolations = {route.integration.isolation for api in config.apis for route in api.routes}
        assert isolations == {Isolation.PROCESS}, name
    integrations = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    assert "example runs them in `process` isolation" in integrations
    assert "`process` isolation (the default)" in (ROOT / "examples" / "chat" / "README.md").read_text()


BROKEN = """
service: broken
provider: {name: aws}
functions:
  f:
    handler: handler.f
    events: [{http: 'GET items'}, {httpApi: 'GET /items'}]
  connect:
    handler: handler.f
    events: [{websocket: $connect}]
"""


async def test_an_import_failure_is_502_on_rest_500_on_http_apis_as_documented(
    tmp_path: Path, aiohttp_client: Client
) -> None:
    (tmp_path / "handler.py").write_text(
        "import portway_no_such_package\n\ndef f(event, context):\n    return {}\n"
    )
    (tmp_path / "serverless.yml").write_text(textwrap.dedent(BROKEN))
    config = load_config(tmp_path / "serverless.yml", env={})
    gateway = await aiohttp_client(create_app(config))
    rest = await gateway.get("/dev/items")
    assert (rest.status, await rest.read()) == (502, b'{"message": "Internal server error"}')
    http_api = await gateway.get("/items")
    assert (http_api.status, await http_api.read()) == (500, b'{"message":"Internal Server Error"}')
    with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
        await gateway.ws_connect("/dev")
    assert handshake.value.status == 502
    row = next(
        line
        for line in (ROOT / "docs" / "integrations.md").read_text().splitlines()
        if line.startswith("| the module cannot be imported")
    )
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1].startswith("502") and cells[2].startswith("500") and "`$connect`: 502" in cells[3]


@pytest.fixture
async def example_backend() -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "hello" / "backend.py"), "0", stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"listening on http://(127\.0\.0\.1:\d+)", line)
        assert match, line
        yield match.group(1)
    finally:
        process.terminate()
        await process.wait()


async def test_dev_users_answers_with_the_example_backend(
    tmp_path: Path, aiohttp_client: Client, example_backend: str
) -> None:
    """The README's `/dev/users` works once `examples/hello/backend.py` listens (here on a free port)."""
    text = (ROOT / "examples" / "hello" / "portway.yaml").read_text()
    assert '"127.0.0.1:9000"' in text
    text = text.replace("codeDir: ./handlers", f"codeDir: {ROOT / 'examples' / 'hello' / 'handlers'}")
    (tmp_path / "portway.yaml").write_text(text.replace('"127.0.0.1:9000"', f'"{example_backend}"'))
    config = load_config(tmp_path / "portway.yaml")
    assert any(route.integration.type is IntegrationType.HTTP for api in config.apis for route in api.routes)
    gateway = await aiohttp_client(create_app(config))
    users = await gateway.get("/dev/users")
    assert users.status == 200
    assert await users.json() == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]
    proxied = await gateway.get("/dev/api/any/path?x=1")
    assert proxied.status == 200
    echoed = await proxied.json()
    assert (echoed["method"], echoed["path"], echoed["query"]) == ("GET", "/any/path", "x=1")
