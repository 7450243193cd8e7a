"""Serverless variables: self, opt, sls, env, aws, file; fallbacks, nesting, interpolation, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.config.errors import Issues
from server.config.variables import Resolver
from server.config.yamlio import parse_yaml


def resolver(
    tmp_path: Path, text: str, *, stage: str | None = None, env: dict[str, str] | None = None
) -> tuple[Resolver, Issues]:
    document, problems = parse_yaml(text)
    assert not problems
    issues = Issues()
    options = {"stage": stage} if stage else {}
    return Resolver(document, base_dir=tmp_path, options=options, env=env or {}, issues=issues), issues


def value(tmp_path: Path, text: str, *parts: str | int, **kwargs: Any) -> Any:
    r, issues = resolver(tmp_path, text, **kwargs)
    result = r.get_deep(*parts)
    assert issues.errors == []
    return result


DOC = """
service: users
custom:
  table: "${self:service}-${sls:stage}-table"
  stages:
    dev: {memory: 256}
    prod: {memory: 512}
  memory: ${self:custom.stages.${sls:stage}.memory}
  region: ${opt:region, self:provider.region}
  list: [a, b]
  first: ${self:custom.list.0}
  mapping: ${self:custom.stages}
  home: ${env:HOME_DIR, 'no-home'}
  nested: ${env:FIRST, ${env:SECOND, 'third'}}
  number: ${env:MISSING, 42}
  flag: ${env:MISSING, true}
  bare: ${opt:mode, local}
  account: ${aws:accountId}-${aws:region}
provider:
  stage: ${opt:stage, 'dev'}
  region: eu-west-1
"""


@pytest.mark.parametrize(
    ("parts", "kwargs", "expected"),
    [
        (("custom", "table"), {}, "users-dev-table"),
        (("custom", "table"), {"stage": "prod"}, "users-prod-table"),
        (("custom", "memory"), {}, 256),
        (("custom", "memory"), {"stage": "prod"}, 512),
        (("custom", "region"), {}, "eu-west-1"),
        (("custom", "first"), {}, "a"),
        (("custom", "mapping"), {}, {"dev": {"memory": 256}, "prod": {"memory": 512}}),
        (("custom", "home"), {}, "no-home"),
        (("custom", "home"), {"env": {"HOME_DIR": "/home/ada"}}, "/home/ada"),
        (("custom", "nested"), {}, "third"),
        (("custom", "nested"), {"env": {"SECOND": "second"}}, "second"),
        (("custom", "nested"), {"env": {"FIRST": "first", "SECOND": "second"}}, "first"),
        (("custom", "number"), {}, 42),
        (("custom", "flag"), {}, True),
        (("custom", "bare"), {}, "local"),
        (("custom", "account"), {}, "123456789012-eu-west-1"),
        (("provider", "stage"), {}, "dev"),
        (("provider", "stage"), {"stage": "qa"}, "qa"),
        (("custom", "missing"), {}, None),
    ],
)
def test_sources_and_fallbacks(tmp_path: Path, parts: tuple[str, ...], kwargs: Any, expected: Any) -> None:
    assert value(tmp_path, DOC, *parts, **kwargs) == expected


def test_sls_stage_order(tmp_path: Path) -> None:
    text = "a: ${sls:stage}\nprovider: {stage: staging}\n"
    assert value(tmp_path, text, "a") == "staging"
    assert value(tmp_path, text, "a", stage="prod") == "prod"
    assert value(tmp_path, "a: ${sls:stage}\n", "a") == "dev"
    r, _ = resolver(tmp_path, "provider: {stage: '${opt:stage, \"beta\"}'}\n")
    assert r.stage == "beta"


def test_interpolation_stringifies_scalars(tmp_path: Path) -> None:
    text = "n: 3\nb: true\ns: 'x-${self:n}-${self:b}-${env:E, 1.5}'\n"
    assert value(tmp_path, text, "s") == "x-3-true-1.5"


def test_deep_values_resolve_inside_containers(tmp_path: Path) -> None:
    text = """
    base: {A: '${self:name}', B: ['${self:name}', plain]}
    env: ${self:base}
    name: svc
    """
    assert value(tmp_path, text, "env") == {"A": "svc", "B": ["svc", "plain"]}


def test_file_source(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "env.yml").write_text(
        "dev: {table: dev-table}\nprod: {table: prod-table}\nname: ${self:service}\n"
    )
    (tmp_path / "data.json").write_text('{"key": {"nested": 7}}')
    text = """
    service: svc
    table: ${file(./config/env.yml):${sls:stage}.table}
    whole: ${file(config/env.yml)}
    json: ${file(./data.json):key.nested}
    fromFile: ${file(./config/env.yml):name}
    missing: ${file(./nope.yml):x, 'fallback'}
    """
    assert value(tmp_path, text, "table") == "dev-table"
    assert value(tmp_path, text, "table", stage="prod") == "prod-table"
    assert value(tmp_path, text, "whole")["prod"] == {"table": "prod-table"}
    assert value(tmp_path, text, "json") == 7
    assert value(tmp_path, text, "fromFile") == "svc"
    assert value(tmp_path, text, "missing") == "fallback"


def test_file_source_of_a_text_file_is_its_text(tmp_path: Path) -> None:
    key = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0B\n-----END PUBLIC KEY-----\n"
    (tmp_path / "public_key").write_text(key)
    (tmp_path / "notes.txt").write_text("a: b\n")  # YAML-looking text is still text
    (tmp_path / "data.json").write_text('{"key": "json"}')
    (tmp_path / "env.yml").write_text("key: yaml\n")
    text = """
    key: ${file(./public_key)}
    inline: "Bearer ${file(./public_key)}"
    notes: ${file(notes.txt)}
    json: ${file(./data.json):key}
    yaml: ${file(./env.yml):key}
    """
    assert value(tmp_path, text, "key") == key
    assert value(tmp_path, text, "inline") == "Bearer " + key
    assert value(tmp_path, text, "notes") == "a: b\n"
    assert value(tmp_path, text, "json") == "json"
    assert value(tmp_path, text, "yaml") == "yaml"
    r, issues = resolver(tmp_path, "a: ${file(./public_key):x}\n")
    assert r.get("a") is None
    assert "file(./public_key) is a text file: it has no 'x' to read" in issues.errors[0].message


ERRORS = [
    (
        "a: ${self:nope}\n",
        "a",
        "cannot resolve ${self:nope}: no value found (a fallback helps: ${self:nope, 'value'})",
    ),
    ("a: ${env:NOPE}\n", "a", "cannot resolve ${env:NOPE}: no value found"),
    ("a: ${opt:region}\n", "a", "cannot resolve ${opt:region}: no value found"),
    (
        "a: ${ssm:/param/x}\n",
        "a",
        "cannot resolve ${ssm:/param/x}: source 'ssm' is not supported "
        "(Portway resolves self, opt, sls, env, aws, file) (a fallback helps: ${ssm:/param/x, 'value'})",
    ),
    ("a: ${cf:stack.output}\n", "a", "source 'cf' is not supported"),
    ("a: ${file(./handler.js):x}\n", "a", "file(./handler.js): JavaScript files cannot be run by Portway"),
    ("a: ${file(./missing.yml):x}\n", "a", "file(./missing.yml): [Errno 2] No such file or directory"),
    ("a: '${self:b'\n", "a", "unterminated variable in '${self:b'"),
    ("a: ${sls_stage}\n", "a", "${sls_stage}: 'sls_stage' is not a variable source:address"),
    ("a: ${strToBool(true)}\n", "a", "source 'strToBool' is not supported"),
    ("m: {x: 1}\na: 'pre-${self:m}'\n", "a", "${self:m} is a dict; it cannot be part of a string"),
    ("a: ${self:b}\nb: ${self:a}\n", "a", "circular variable reference: self:b -> self:a -> self:b"),
    ("a: ${self:a.x}\n", "a", "circular variable reference: self:a.x -> self:a.x"),
]


@pytest.mark.parametrize(("text", "location", "message"), ERRORS)
def test_unresolvable_values_are_issues(tmp_path: Path, text: str, location: str, message: str) -> None:
    r, issues = resolver(tmp_path, text)
    assert r.get("a") is None
    assert "a" in r.failed
    assert any(issue.location == location and message in issue.message for issue in issues.errors), (
        issues.errors
    )


def test_self_reference_failure_names_both_places(tmp_path: Path) -> None:
    r, issues = resolver(tmp_path, "custom: {secret: '${ssm:/x}'}\nuse: ${self:custom.secret}\n")
    assert r.get("use") is None
    assert [issue.location for issue in issues.errors] == ["custom.secret", "use"]
    assert issues.errors[1].message == "${self:custom.secret} cannot be resolved (see custom.secret)"


def test_unsupported_source_with_fallback_is_fine(tmp_path: Path) -> None:
    assert value(tmp_path, "a: ${ssm:/x, 'local'}\n", "a") == "local"


def test_resolution_is_lazy(tmp_path: Path) -> None:
    r, issues = resolver(tmp_path, "custom: {bad: '${ssm:/x}'}\ngood: ok\n")
    assert r.get("good") == "ok" and issues.errors == []


def test_deep_leaves_out_what_fails(tmp_path: Path) -> None:
    r, issues = resolver(tmp_path, "env: {A: '${env:NOPE}', B: b}\n")
    assert r.get_deep("env") == {"B": "b"}
    assert [issue.location for issue in issues.errors] == ["env.A"]


def test_stage_defined_through_itself_is_a_cycle_not_a_hang(tmp_path: Path) -> None:
    r, issues = resolver(tmp_path, "provider: {stage: '${sls:stage}'}\n")
    assert r.stage == "dev"
    assert any(
        "circular variable reference: sls:stage -> sls:stage" in issue.message for issue in issues.errors
    )


PUBLIC_KEY = "-----BEGIN CERTIFICATE-----\nMIIDDTCCAfWgAwIBAgIJ\n-----END CERTIFICATE-----\n"


def test_project_reads_its_public_key_file(tmp_path: Path) -> None:
    """The pattern of serverless/examples' aws-python-auth0-custom-authorizers-api: a PEM file read
    with ``${file(./public_key)}`` (plain text: its contents) beside a JSON secrets file read by key."""
    (tmp_path / "public_key").write_text(PUBLIC_KEY)
    (tmp_path / "secrets.json").write_text('{"AUTH0_CLIENT_ID": "your-client-id"}')
    document, problems = parse_yaml(
        "service: s\nprovider:\n  name: aws\n  environment:\n"
        "    AUTH0_CLIENT_ID: ${file(./secrets.json):AUTH0_CLIENT_ID}\n"
        "    AUTH0_CLIENT_PUBLIC_KEY: ${file(./public_key)}\n"
    )
    assert problems == []
    issues = Issues()
    r = Resolver(document, base_dir=tmp_path, options={}, env={}, issues=issues)
    environment = r.get_deep("provider", "environment")
    assert issues.errors == []
    assert environment == {"AUTH0_CLIENT_ID": "your-client-id", "AUTH0_CLIENT_PUBLIC_KEY": PUBLIC_KEY}


def test_provider_stage_and_region_have_serverless_defaults(tmp_path: Path) -> None:
    """aws-python-rest-api-with-dynamodb's `${opt:stage, self:provider.stage}` with no provider.stage."""
    r, issues = resolver(
        tmp_path, "provider: {name: aws}\na: ${opt:stage, self:provider.stage}\nb: ${self:provider.region}\n"
    )
    assert (r.get("a"), r.get("b"), issues.errors) == ("dev", "us-east-1", [])
    r, issues = resolver(tmp_path, "provider: {name: aws, stage: prod}\na: ${self:provider.stage}\n")
    assert r.get("a") == "prod"
