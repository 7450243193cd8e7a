"""load_config: format detection, file and YAML problems, the schema file, agreement with the router."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from routes.dispatch import ApiDispatcher
from routes.table import RouteTable
from server.config.errors import ConfigError
from server.config.load import detect_format, load_config
from server.config.model import IntegrationConfig, IntegrationType, RouteConfig
from server.config.schema import SCHEMA_PATH
from server.config.yamlio import parse_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


def issues_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [(issue.location, issue.message) for issue in info.value.issues]


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"portway": 1}, "native"),
        ({"service": "x", "provider": {}}, "serverless"),
        ({"service": "x", "functions": {}}, "serverless"),
        ({"service": "x"}, None),
        ({"apis": []}, None),
        (["portway"], None),
        ("portway", None),
    ],
)
def test_detect_format(document: object, expected: str | None) -> None:
    assert detect_format(document) == expected


def test_file_problems(tmp_path: Path) -> None:
    assert issues_of(tmp_path / "missing.yaml")[0][1].startswith("cannot read the file: [Errno 2]")
    assert issues_of(write(tmp_path, "")) == [("", "the file is empty")]
    assert issues_of(write(tmp_path, "# only a comment\n")) == [("", "the file is empty")]
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    assert issues_of(tmp_path / "binary.yaml")[0][1].startswith("cannot read the file")
    assert issues_of(write(tmp_path, "name: x\nroutes: {}\n")) == [
        (
            "",
            "not a gateway definition: a Portway file starts with `portway: 1`; a serverless.yml has "
            "`service:` and `provider:` or `functions:`; an OpenAPI document starts with `openapi: 3.x` "
            "or `swagger: '2.0'`; a SAM/CloudFormation template has `Resources:`",
        )
    ]


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "portway: 1\napis:\n  - name: a\n    routes: {GET /x: a.b\n")
    ((location, message),) = issues_of(path)
    assert location == "line 5, column 1"
    assert message.startswith("YAML syntax error: while parsing a flow mapping")
    ((location, message),) = issues_of(write(tmp_path, "a: b: c\n"))
    assert location == "line 1, column 5"
    assert message.startswith("YAML syntax error: mapping values are not allowed")


def test_duplicate_keys_are_reported_with_the_rest(tmp_path: Path) -> None:
    (tmp_path / "pets.py").write_text("")
    path = write(
        tmp_path,
        """\
        portway: 1
        apis:
          - name: pets
            routes:
              GET /pets: pets.list
              FETCH /x: pets.x
              GET /pets: pets.other
        """,
    )
    assert issues_of(path) == [
        ("line 7, column 7", "duplicate key 'GET /pets' (YAML keys must be unique in a mapping)"),
        (
            'apis[0].routes["FETCH /x"]',
            "method 'FETCH': use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY",
        ),
    ]


def test_yaml_booleans_follow_yaml_1_2() -> None:
    data, problems = parse_yaml("a: yes\nb: on\nc: true\nd: False\ne: NO\n")
    assert problems == [] and data == {"a": "yes", "b": "on", "c": True, "d": False, "e": "NO"}


def test_schema_is_valid_draft_2020_12_and_accepts_the_example() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    text = (EXAMPLE / "portway.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../server/config/portway.schema.json\n")
    assert (EXAMPLE / "../../server/config/portway.schema.json").resolve() == SCHEMA_PATH.resolve()
    document, _ = parse_yaml(text)
    assert list(Draft202012Validator(schema).iter_errors(document)) == []


def test_loaded_examples_build_a_router() -> None:
    for name in ("portway.yaml", "serverless.yml"):
        config = load_config(EXAMPLE / name, env={})
        dispatcher = ApiDispatcher(config)
        assert dispatcher.resolve("/dev/hello") is not None
        found = dispatcher.resolve("/hello")
        assert found is not None and found.stage.name == "$default"


# Paths built from a small alphabet on which the loader and routes.table must agree: parameter names
# depend on the position, so the only conflicts are the ones the route table also rejects.
_SEGMENT = st.sampled_from(["a", "b", "x", "y", "p"])
_ROUTE = st.tuples(st.sampled_from(["GET", "ANY"]), st.lists(_SEGMENT, min_size=0, max_size=3))


def _path(segments: list[str]) -> str:
    """``["a", "x", "p"]`` -> ``/a/{x1}/{p2+}``."""
    names = {"x": "{{x{}}}", "y": "{{y{}}}", "p": "{{p{}+}}"}
    return "/" + "/".join(names[s].format(i) if s in names else s for i, s in enumerate(segments))


@settings(max_examples=150, deadline=None)
@given(st.lists(_ROUTE, min_size=1, max_size=6), st.booleans())
def test_loader_accepts_exactly_what_the_route_table_accepts(
    tmp_path_factory: pytest.TempPathFactory, routes: list[tuple[str, list[str]]], http: bool
) -> None:
    keys = [f"{method} {_path(segments)}" for method, segments in routes]
    if len(set(keys)) != len(keys):
        return  # YAML mapping keys: duplicates are reported by the YAML layer, tested elsewhere
    directory = tmp_path_factory.mktemp("prop")
    (directory / "h.py").write_text("")
    lines = "".join(f"      {json.dumps(key)}: h.f\n" for key in keys)
    kind = "http" if http else "rest"
    path = write(directory, f"portway: 1\napis:\n  - name: p\n    type: {kind}\n    routes:\n{lines}")
    try:
        config = load_config(path)
    except ConfigError:
        loaded = False
    else:
        loaded = True
        assert [route.route_key for route in config.apis[0].routes] == keys
    try:
        integration = IntegrationConfig(IntegrationType.MOCK)
        pairs = [key.split(" ", 1) for key in keys]
        RouteTable([RouteConfig(method, path, integration) for method, path in pairs], http_api=http)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert loaded == accepted, keys


def test_native_examples_in_the_docs_load(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    blocks = [block.split("```", 1)[0] for block in docs.split("```yaml\n")[1:]]
    documents = [block for block in blocks if "portway: 1" in block]
    assert len(documents) >= 2
    for index, text in enumerate(documents):
        path = tmp_path / f"doc{index}.yaml"
        path.write_text(text)
        config = load_config(path)
        assert config.apis, text
