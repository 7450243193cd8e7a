"""Shared pieces of the Lambda authorizer tests: a native config written to ``tmp_path`` and
loaded like ``portway serve`` does, the handlers' invocation log, and a polling helper."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from server.config.load import load_config
from server.config.model import GatewayConfig

HANDLERS = Path(__file__).parent / "handlers"


def write_config(tmp_path: Path, text: str) -> GatewayConfig:
    """Load a native config (``CODE`` in the text stands for the handlers' folder)."""
    path = tmp_path / "portway.yaml"
    path.write_text(textwrap.dedent(text).replace("CODE", json.dumps(str(HANDLERS))))
    return load_config(path)


class InvocationLog:
    """The JSON lines the authorizer handlers append (one per invocation)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def __len__(self) -> int:
        return len(self.events())


@pytest.fixture
def auth_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InvocationLog:
    """AUTH_LOG for in-process handlers (environment) and worker processes (create_app(pass_env=...))."""
    path = tmp_path / "auth-invocations.jsonl"
    monkeypatch.setenv("AUTH_LOG", str(path))
    return InvocationLog(path)
