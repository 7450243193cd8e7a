"""The Dockerfile, checked and replayed without a Docker engine.

The static test reads the Dockerfile (tests/deploy/dockerfile.py) for what the image promises:
two stages on python:3.11-slim, a non-root user, tini as PID 1, STOPSIGNAL SIGTERM, a HEALTHCHECK
on /@health with python's urllib (slim has no curl).

The replay runs the same steps in a temporary directory: the build stage's COPY lines into a
source folder, its build-wheels.sh RUN line there, the runtime stage's install-runtime.sh RUN
line into a fresh venv (from the wheels only: --no-index), then the image's ENTRYPOINT + CMD with
its ENV, and the HEALTHCHECK command itself until it passes. SIGTERM must stop it cleanly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.dockerfile import Stage, parse
from tests.redis_fixture import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SCRIPT = re.compile(r"\bsh (\S*/)?(build-wheels\.sh|install-runtime\.sh)((?: [^\s&;|]+)*)")
STEP_TIMEOUT_S = 300


def stages() -> tuple[Stage, Stage]:
    parsed = parse(DOCKERFILE)
    assert len(parsed) == 2, "a build stage and a runtime stage"
    return parsed[0], parsed[1]


def test_dockerfile_promises() -> None:
    build, runtime = stages()
    assert build.name == "build"
    assert build.base.startswith("python:3.11-slim") and runtime.base.startswith("python:3.11-slim")
    user = runtime.all("USER")[-1].args
    assert user.split(":")[0] not in ("root", "0"), "the runtime runs as a non-root user"
    assert [i.args for i in runtime.all("STOPSIGNAL")] == ["SIGTERM"]
    entrypoint = runtime.all("ENTRYPOINT")[-1].exec_form()
    assert entrypoint[:3] == ["tini", "--", "portway"], "tini is PID 1 and forwards SIGTERM"
    assert any("apt-get install" in i.args and " tini" in i.args for i in runtime.all("RUN"))
    health = runtime.all("HEALTHCHECK")[-1].args
    assert "/@health" in health and "urllib.request" in health and "curl" not in health
    env = runtime.env()
    assert [i.args for i in runtime.all("EXPOSE")] == [env["PORTWAY_PORT"]]
    assert env["PORTWAY_HOST"] == "0.0.0.0"  # a container's 127.0.0.1 is unreachable from outside
    # Only the wheels reach the runtime stage: no source tree, no compiler, no test extras.
    runtime_copies = [i.args for i in runtime.all("COPY")]
    assert not any(arg.split()[0] in ("server", "routes", "connections", ".") for arg in runtime_copies)
    assert all("[test]" not in i.args for i in runtime.all("RUN") + build.all("RUN"))


def _copy_into(stage: Stage, root: Path) -> Path:
    """Replay ``stage``'s WORKDIR and COPY lines (no --from) into ``root``; return the workdir."""
    workdir = root
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = root / instruction.args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY" and not instruction.args.startswith("--"):
            *sources, dest = instruction.args.split()
            target = workdir / dest if not dest.startswith("/") else root / dest.lstrip("/")
            for source in sources:
                path = ROOT / source
                into = target / path.name if (dest.endswith("/") or len(sources) > 1) else target
                into.parent.mkdir(parents=True, exist_ok=True)
                if path.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", ".portway", "*.egg-info")
                    shutil.copytree(path, into, ignore=ignore, dirs_exist_ok=True)
                else:
                    shutil.copy2(path, into)
    return workdir


def _script_runs(stage: Stage) -> list[tuple[str, list[str]]]:
    found = []
    for instruction in stage.all("RUN"):
        for match in SCRIPT.finditer(instruction.args):
            found.append((match.group(2), match.group(3).split()))
    return found


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.timeout(900)
def test_replay_the_image_build_and_healthcheck(tmp_path: Path) -> None:
    build, runtime = stages()
    paths = {"/wheels": tmp_path / "wheels", "/opt/portway/venv": tmp_path / "venv"}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTWAY_", "VIRTUAL_ENV"))}
    base_env["PYTHON"] = sys.executable  # python:3.11 here is the interpreter running the tests
    base_env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    src = _copy_into(build, tmp_path / "build")
    runs = _script_runs(build)
    assert [name for name, _ in runs] == ["build-wheels.sh"]
    for name, args in runs:
        _run(["sh", str(ROOT / "deploy/image" / name), *(str(paths.get(a, a)) for a in args)], src, base_env)
    runs = _script_runs(runtime)
    assert [name for name, _ in runs] == ["install-runtime.sh"]
    for name, args in runs:
        _run(
            ["sh", str(ROOT / "deploy/image" / name), *(str(paths.get(a, a)) for a in args)],
            tmp_path,
            base_env,
        )

    venv_python = paths["/opt/portway/venv"] / "bin" / "python"
    # Only runtime dependencies: the test extras are not in the image.
    for module in ("pytest", "hypothesis", "boto3", "websockets"):
        probe = subprocess.run([str(venv_python), "-c", f"import {module}"], capture_output=True, timeout=60)
        assert probe.returncode != 0, f"{module} is installed in the runtime venv"

    port = free_port()
    env = {**base_env, **runtime.env()}
    env["PATH"] = f"{venv_python.parent}:{os.environ['PATH']}"
    env["PORTWAY_HOST"] = "127.0.0.1"  # loopback only in tests
    env["PORTWAY_PORT"] = str(port)
    env["PORTWAY_STATE_FILE"] = str(tmp_path / "state" / "state.json")
    env["PORTWAY_CACHE_DIR"] = str(tmp_path / "state" / "cache")
    (tmp_path / "state").mkdir()
    entrypoint = runtime.all("ENTRYPOINT")[-1].exec_form()
    command = entrypoint[2:] + runtime.all("CMD")[-1].exec_form()  # tini -- : PID 1 in the image only
    command = [arg.replace("/opt/portway/examples", str(ROOT / "examples")) for arg in command]
    command[0] = str(venv_python.parent / command[0])
    workdir = tmp_path / "app"  # the image's WORKDIR: not the source tree, so the venv's copy runs
    workdir.mkdir()
    health = runtime.all("HEALTHCHECK")[-1].args
    check = parse_healthcheck(health)
    check[0] = str(venv_python)
    with subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        output = _healthy_then_stopped(proc, check, env)
    assert f"listening on http://127.0.0.1:{port}" in output and "Traceback" not in output, output
    assert (
        str(venv_python.parent.parent)
        in subprocess.run(
            [str(venv_python), "-c", "import server; print(server.__file__)"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    ), "the installed package, not the source tree"


def _healthy_then_stopped(proc: subprocess.Popen[bytes], check: list[str], env: dict[str, str]) -> str:
    """Run the HEALTHCHECK until it passes (bounded), then SIGTERM: exit 0. The process's output."""
    try:
        deadline = time.monotonic() + 60
        while True:
            result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
            if result.returncode == 0:
                break
            assert proc.poll() is None, "the gateway exited before its healthcheck passed"
            assert time.monotonic() < deadline, f"the HEALTHCHECK never passed: {result.stderr}"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    return proc.stdout.read().decode()


def parse_healthcheck(args: str) -> list[str]:
    """The exec-form command after ``CMD`` in a HEALTHCHECK line."""
    _, sep, command = args.partition(" CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args}"
    value = json.loads(command)
    assert isinstance(value, list)
    return [str(v) for v in value]
