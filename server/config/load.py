"""Read a gateway definition file, detect its format, and build the model.

* A mapping with a top-level ``portway:`` key is Portway's native format (:mod:`.native`).
* A mapping with ``service:`` plus ``provider:`` or ``functions:`` is a Serverless Framework v3
  ``serverless.yml`` (:mod:`.serverless`).
* ``openapi: 3.x`` or ``swagger: '2.0'`` is an OpenAPI document with API Gateway's extensions
  (:mod:`.openapi`); ``bindings`` (``--bindings FILE``, :mod:`.bindings`) map its Lambda functions
  and backends to local ones.
* A mapping with ``Resources`` of ``AWS::`` types is an AWS SAM or CloudFormation template
  (:mod:`.template_load`), bindings likewise.

YAML is parsed safely by :mod:`.yamlio` (libyaml when available; syntax errors and duplicate keys
reported with line and column; YAML 1.2 booleans).

Every problem found is collected; :func:`load_config` raises one :class:`ConfigError` with all
of them, or returns the :class:`GatewayConfig` (whose ``warnings`` list what was ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.config.bindings import Bindings, parse_bindings
from server.config.errors import ConfigError, ConfigIssue, Issues
from server.config.model import GatewayConfig
from server.config.native import load_native
from server.config.openapi import detect_openapi, load_openapi
from server.config.serverless import load_serverless
from server.config.template import detect_template
from server.config.template_load import load_template
from server.config.yamlio import parse_yaml

__all__ = ["detect_format", "load_config"]


def detect_format(document: Any) -> str | None:
    """``"native"``, ``"serverless"``, ``"openapi"``, ``"template"`` or None."""
    if not isinstance(document, dict):
        return None
    if "portway" in document:
        return "native"
    if detect_openapi(document):
        return "openapi"
    if "service" in document and ("provider" in document or "functions" in document):
        return "serverless"
    if detect_template(document):
        return "template"
    return None


def load_config(
    path: Path,
    *,
    stage: str | None = None,
    env: Mapping[str, str] | None = None,
    bindings: Path | None = None,
) -> GatewayConfig:
    """Load ``path`` (native or serverless.yml, detected) into a validated :class:`GatewayConfig`.

    Args:
        path: the definition file; relative paths inside it (handlers, ``codeDir``) are resolved
            against its folder.
        stage: native: serve only this stage of every API; serverless: ``--stage`` (overrides
            ``provider.stage`` and answers ``${opt:stage}``).
        env: environment for serverless ``${env:NAME}`` variables (default ``os.environ``).
        bindings: a file mapping the Lambda functions and backends an OpenAPI or SAM document names
            to local ones (:mod:`.bindings`).

    Raises:
        ConfigError: with every problem found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue("", f"cannot read the file: {exc}")], path) from None
    document, problems = parse_yaml(text)
    issues = Issues(errors=list(problems))  # duplicate keys: reported, and the rest is still checked
    if document is None:
        if not problems:
            issues.error("", "the file is empty")
        issues.raise_if_any(path)
    kind = detect_format(document)
    if kind is None:
        issues.error(
            "",
            "not a gateway definition: a Portway file starts with `portway: 1`; a serverless.yml has "
            "`service:` and `provider:` or `functions:`; an OpenAPI document starts with `openapi: 3.x` "
            "or `swagger: '2.0'`; a SAM/CloudFormation template has `Resources:`",
        )
        issues.raise_if_any(path)
    local = _bindings(bindings, issues)
    if bindings is not None and kind in ("native", "serverless"):
        issues.error("--bindings", f"bindings apply to OpenAPI and SAM/CloudFormation documents, not {kind}")
    if kind == "native":
        config = load_native(document, source=path, stage=stage, issues=issues)
    elif kind == "openapi":
        config = load_openapi(document, source=path, stage=stage, bindings=local, issues=issues)
    elif kind == "template":
        config = load_template(document, source=path, stage=stage, bindings=local, issues=issues)
    else:
        environment = os.environ if env is None else env
        config = load_serverless(document, source=path, stage=stage, env=environment, issues=issues)
    issues.raise_if_any(path)
    return config


def _bindings(path: Path | None, issues: Issues) -> Bindings:
    """The ``--bindings`` file, relative paths in it resolved against its folder."""
    if path is None:
        return Bindings()
    try:
        document, problems = parse_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        issues.error("--bindings", f"cannot read {path}: {exc}")
        return Bindings()
    for problem in problems:
        issues.error(f"--bindings {problem.location}", problem.message)
    return parse_bindings(document, Path(path).resolve().parent, "--bindings", issues)
