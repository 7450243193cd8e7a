"""`runtime:` in both config formats: provided.* and nodejs* functions load as Runtime API functions,
with a missing bootstrap or an unknown runtime reported at load time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError
from server.config.load import load_config


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_native_runtime_on_a_route(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "fn" / "index.js").write_text("exports.handler = async () => ({statusCode: 200});\n")
    _write(tmp_path / "fn" / "bootstrap", "#!/bin/sh\n").chmod(0o755)
    config = load_config(
        _write(
            tmp_path / "portway.yaml",
            """
            portway: 1
            apis:
              - name: a
                routes:
                  GET /node: {python: fn/index.handler, runtime: nodejs20.x}
                  GET /custom: {python: fn/function.handler, runtime: provided.al2023}
                  GET /py: {python: fn/app.handler, runtime: python3.11}
            """,
        )
    )
    assert not config.warnings
    by_path = {route.path: route.integration for route in config.apis[0].routes}
    assert by_path["/node"].runtime == "nodejs20.x"
    assert (by_path["/node"].code_dir, by_path["/node"].handler) == (
        (tmp_path / "fn").resolve(),
        "index.handler",
    )
    assert by_path["/custom"].runtime == "provided.al2023"
    assert by_path["/custom"].handler == "function.handler"
    assert (by_path["/py"].runtime, by_path["/py"].handler) == ("python3.11", "app.handler")


def test_native_runtime_errors(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "portway.yaml",
        """
        portway: 1
        apis:
          - name: a
            routes:
              GET /custom: {python: function.handler, runtime: provided.al2}
              GET /java: {python: app.handler, runtime: java21}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    messages = [issue.message for issue in info.value.issues]
    assert f"runtime provided.al2: no bootstrap in {tmp_path.resolve()}" in messages
    assert any("python3.X, provided.al2, provided.al2023 or nodejsNN.x" in message for message in messages)


def test_serverless_node_function(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text("exports.h = async () => ({statusCode: 200});\n")
    config = load_config(
        _write(
            tmp_path / "serverless.yml",
            """
            service: s
            provider: {name: aws, runtime: nodejs20.x}
            functions:
              f:
                handler: index.h
                events: [{http: {path: a, method: get}}]
            """,
        ),
        env={},
    )
    assert not config.warnings
    integration = config.apis[0].routes[0].integration
    assert (integration.runtime, integration.handler) == ("nodejs20.x", "index.h")
