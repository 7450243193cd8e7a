"""serverless-python-requirements, layers and runtimes (issue 10 item 4)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from routes.integrations.python_deps import DependencyError, interpreter_for
from tests.runtime.serve import copy_project, load, serving
from tests.runtime.wheel import build_wheel

TINY = 'GREETING = "hello from a requirements.txt package"\n'


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PORTWAY_CACHE_DIR", raising=False)
    root = copy_project("with_deps", tmp_path).resolve()
    build_wheel(root / "wheels", "portway-tiny-dep", "1.0", TINY)
    return root


async def test_requirements_and_layer_served_end_to_end(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert importlib.util.find_spec("portway_tiny_dep") is None  # not in the gateway's venv
    caplog.set_level(logging.INFO, logger="portway.deps")
    config = load(project / "serverless.yml")
    (route,) = config.apis[0].routes
    assert route.integration.requirements == project / "requirements.txt"
    assert route.integration.layers == (project / "layer",)
    async with serving(config) as client:
        response = await client.get("/dev/hello")
        assert response.status == 200, await response.text()
        body = json.loads(await response.text())
    (installed,) = (project / ".portway" / "requirements").iterdir()  # beside the config, by hash
    assert body["dep"] == "hello from a requirements.txt package"
    assert body["dep_file"] == str(installed / "portway_tiny_dep" / "__init__.py")
    assert body["layer"] == "shared layer"
    # Lambda's order: task root, the package's requirements, the layer's site-packages and python/.
    layer = project / "layer" / "python"
    assert body["path"] == [
        str(project),
        str(installed),
        str(layer / "lib/python3.11/site-packages"),
        str(layer),
    ]
    messages = [record.getMessage() for record in caplog.records]
    assert any("pip: Successfully installed portway-tiny-dep-1.0" in message for message in messages)
    # The runtime the project names is not installed: said once, clearly, then the gateway's.
    assert any("runtime python3.99 is not installed here" in message for message in messages)

    # A second start reuses the install (same content), without running pip.
    caplog.clear()
    started = time.monotonic()
    async with serving(load(project / "serverless.yml")) as client:
        assert (await client.get("/dev/hello")).status == 200
    assert time.monotonic() - started < 10
    assert any("already installed" in record.getMessage() for record in caplog.records)
    assert not any("pip:" in record.getMessage() for record in caplog.records)


async def test_a_failed_install_stops_start_up(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "requirements.txt").write_text("--no-index\nportway-no-such-package==9\n")
    monkeypatch.setenv("PORTWAY_CACHE_DIR", str(project / "elsewhere"))
    with pytest.raises(DependencyError, match="pip failed"):
        async with serving(load(project / "serverless.yml")):
            pass
    assert not any((project / "elsewhere" / "requirements").iterdir())  # nothing half-built kept


def test_runtime_picks_an_installed_interpreter(caplog: pytest.LogCaptureFixture) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert interpreter_for(f"python{version}", "fn") == (sys.executable, version)
    assert interpreter_for(None, "fn") == (sys.executable, version)
    with caplog.at_level(logging.WARNING, logger="portway.deps"):
        assert interpreter_for("python3.99", "fn") == (sys.executable, version)
    assert caplog.messages == [
        f"fn: runtime python3.99 is not installed here (no 'python3.99' on PATH): running it with the "
        f"gateway's Python {version} instead"
    ]


def test_a_runtime_older_than_the_worker_uses_the_gateways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shim = tmp_path / "python3.9"  # installed, as on many machines, but the worker needs 3.11+
    shim.write_text("#!/bin/sh\nexit 1\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    with caplog.at_level(logging.WARNING, logger="portway.deps"):
        assert interpreter_for("python3.9", "fn") == (sys.executable, version)
    assert caplog.messages == [
        f"fn: runtime python3.9 is older than Portway's worker supports (Python 3.11+): running it with "
        f"the gateway's Python {version} instead"
    ]


FOREIGN_PROJECT = """
service: foreign
provider: {name: aws, runtime: python3.98, stage: dev}
functions:
  which:
    handler: which.which
    events: [{http: {path: which, method: get}}]
"""

WHICH = """
import asyncio
import importlib.util, json, os, sys

def which(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "executable": sys.executable,
        "execution_env": os.environ["AWS_EXECUTION_ENV"],
        "orjson": importlib.util.find_spec("orjson").origin,
        "gateway_packages": importlib.util.find_spec("aiohttp") is not None,
    })}
"""


async def test_an_installed_runtime_runs_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``runtime: python3.98`` found on PATH (here a shim for the system's Python, which has pip but
    none of the gateway's packages) runs the workers, with orjson installed for it."""
    system = shutil.which("python3", path="/usr/bin") or ""
    if not system or system == sys.executable:
        pytest.fail("this test needs a system python3 in /usr/bin besides the venv's")
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "python3.98"
    shim.write_text(f'#!/bin/sh\nexec {system} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{sys.exec_prefix}/bin:/usr/bin:/bin")
    monkeypatch.setenv("PORTWAY_CACHE_DIR", str(tmp_path / "cache"))
    project = tmp_path / "foreign"
    project.mkdir()
    (project / "serverless.yml").write_text(FOREIGN_PROJECT)
    (project / "which.py").write_text(WHICH)
    async with serving(load(project / "serverless.yml")) as client:
        response = await client.get("/dev/which")
        assert response.status == 200, await response.text()
        body = json.loads(await response.text())
    same = await asyncio.to_thread(os.path.samefile, body["executable"], system)
    assert same, (body["executable"], system)
    assert body["execution_env"] == "AWS_Lambda_python3.98"
    assert body["orjson"].startswith(str(tmp_path / "cache" / "requirements"))
    assert body["gateway_packages"] is False


async def test_an_unwritable_cache_is_one_clear_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = project / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PORTWAY_CACHE_DIR", str(blocker))
    with pytest.raises(DependencyError, match="cannot write the cache .*set PORTWAY_CACHE_DIR"):
        async with serving(load(project / "serverless.yml")):
            pass
