"""serverless.yml: where a function's code, requirements and layers come from (serverless_code)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import GatewayConfig, IntegrationConfig


def load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "serverless.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, env={})


def functions(config: GatewayConfig) -> dict[str, IntegrationConfig]:
    return {route.integration.function_name: route.integration for api in config.apis for route in api.routes}


def test_module_folder_is_the_task_root_with_its_own_requirements(tmp_path: Path) -> None:
    for folder in ("api", "worker"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "handler.py").write_text("def main(event, context):\n    return {}\n")
    (tmp_path / "api" / "requirements.txt").write_text("requests\n")
    (tmp_path / "requirements.txt").write_text("boto3\n")
    config = load(
        tmp_path,
        """
        service: s
        plugins: [serverless-python-requirements]
        provider: {name: aws, runtime: python3.12}
        functions:
          api:
            module: api
            handler: handler.main
            runtime: python3.11
            events: [{http: {path: a, method: get}}]
          worker:
            module: worker
            handler: handler.main
            events: [{http: {path: w, method: get}}]
          root:
            handler: api/handler.main
            events: [{http: {path: r, method: get}}]
        """,
    )
    root = tmp_path.resolve()
    by_name = functions(config)
    api, worker, at_root = by_name["s-dev-api"], by_name["s-dev-worker"], by_name["s-dev-root"]
    assert (api.code_dir, api.handler, api.runtime) == (root / "api", "handler.main", "python3.11")
    assert api.requirements == root / "api" / "requirements.txt"
    # A module without its own file uses the service's, as the plugin does.
    assert (worker.code_dir, worker.requirements, worker.runtime) == (
        root / "worker",
        root / "requirements.txt",
        "python3.12",
    )
    assert (at_root.code_dir, at_root.handler) == (root, "api.handler.main")
    assert at_root.requirements == root / "requirements.txt"
    assert config.warnings == ()


def test_requirements_without_the_plugin_are_not_installed(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def main(event, context):\n    return {}\n")
    (tmp_path / "requirements.txt").write_text("requests\n")
    config = load(
        tmp_path,
        """
        service: s
        functions:
          f: {handler: handler.main, events: [{http: {path: a, method: get}}]}
        """,
    )
    assert functions(config)["s-dev-f"].requirements is None
    (warning,) = config.warnings
    assert warning.startswith("plugins: requirements.txt is not installed: serverless-python-requirements")


def test_local_layers_by_ref_and_by_name(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def main(event, context):\n    return {}\n")
    for folder in ("layers/common", "layers/my-tools"):
        (tmp_path / folder / "python").mkdir(parents=True)
    config = load(
        tmp_path,
        """
        service: s
        provider:
          name: aws
          layers: [{Ref: CommonLambdaLayer}]
        layers:
          common: {path: layers/common}
          my-tools: {path: layers/my-tools}
        functions:
          a:
            handler: handler.main
            layers:
              - Ref: MyDashtoolsLambdaLayer
              - common
              - arn:aws:lambda:us-east-1:123456789012:layer:remote:3
            events: [{http: {path: a, method: get}}]
          b: {handler: handler.main, events: [{http: {path: b, method: get}}]}
        """,
    )
    root = tmp_path.resolve()
    by_name = functions(config)
    assert by_name["s-dev-a"].layers == (root / "layers/my-tools", root / "layers/common")
    assert by_name["s-dev-b"].layers == (root / "layers/common",)  # the provider's
    (warning,) = config.warnings
    assert warning.startswith("functions.a.layers[2]: layer 'arn:aws:lambda:")


def test_module_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def main(event, context):\n    return {}\n")
    with pytest.raises(ConfigError) as info:
        load(
            tmp_path,
            """
            service: s
            functions:
              f: {module: missing, handler: handler.main, events: [{http: {path: a, method: get}}]}
            """,
        )
    assert [(issue.location, issue.message) for issue in info.value.issues] == [
        ("functions.f.module", "module 'missing' is not a folder beside serverless.yml")
    ]
