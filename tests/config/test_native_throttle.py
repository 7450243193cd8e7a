"""Native format: account, stage and method throttling settings (aws-contract.md §3.1)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import GatewayConfig, ThrottleSettings


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pets.py").write_text("def get(event, context):\n    return {}\n")
    path = tmp_path / "portway.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str) -> GatewayConfig:
    return load_config(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return [(issue.location, issue.message) for issue in info.value.issues]


def test_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: pets
            routes:
              GET /pets: pets.get
        """,
    )
    assert config.account_throttle == ThrottleSettings(10000, 5000)
    assert config.throttle_failure == "open"
    (stage,) = config.apis[0].stages
    assert stage.throttle is None and dict(stage.method_throttles) == {}


def test_all_levels(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        throttle: {rate: 50, burst: 20}
        throttleFailure: closed
        apis:
          - name: pets
            stages:
              dev:
                throttle: {rate: 2.5, burst: 10}
                methodThrottles:
                  GET /pets/{id}: {rate: 1, burst: 5}
                  post /pets: {rate: 0, burst: 0}
              prod:
                variables: {a: b}
            routes:
              GET /pets/{id}: pets.get
              POST /pets: pets.get
          - name: web
            type: http
            stages:
              $default:
                methodThrottles:
                  $default: {rate: 3, burst: 4}
            routes:
              $default: pets.get
        """,
    )
    assert config.account_throttle == ThrottleSettings(50, 20)
    assert config.throttle_failure == "closed"
    dev, prod = config.apis[0].stages
    assert [api.name for api in config.apis] == ["pets", "web"]
    assert dev.throttle == ThrottleSettings(2.5, 10)
    assert dict(dev.method_throttles) == {
        "GET /pets/{id}": ThrottleSettings(1, 5),
        "POST /pets": ThrottleSettings(0, 0),
    }
    assert prod.throttle is None and dict(prod.method_throttles) == {}
    assert dict(prod.variables) == {"a": "b"}
    (default,) = config.apis[1].stages
    assert dict(default.method_throttles) == {"$default": ThrottleSettings(3, 4)}


def test_unknown_route(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        portway: 1
        apis:
          - name: pets
            stages:
              dev:
                methodThrottles:
                  GET /cats: {rate: 1, burst: 5}
            routes:
              GET /pets: pets.get
        """,
    )
    assert len(found) == 1, found
    location, message = found[0]
    assert location == 'apis[0].stages.dev.methodThrottles["GET /cats"]'
    assert "no route 'GET /cats'" in message and "GET /pets" in message


@pytest.mark.parametrize(
    ("fragment", "location"),
    [
        ("throttle: {rate: -1, burst: 5}", "throttle.rate"),
        ("throttle: {rate: 1, burst: 1.5}", "throttle.burst"),
        ("throttle: {rate: 1, burst: -2}", "throttle.burst"),
        ("throttle: {rate: '1', burst: 2}", "throttle.rate"),
        ("throttle: {rate: 1}", "throttle"),
        ("throttle: {rate: 1, burst: 2, extra: 3}", "throttle.extra"),
        ("throttleFailure: maybe", "throttleFailure"),
    ],
)
def test_invalid_account_settings(tmp_path: Path, fragment: str, location: str) -> None:
    api = "apis:\n  - name: pets\n    routes:\n      GET /pets: pets.get\n"
    found = problems(tmp_path, f"portway: 1\n{fragment}\n{api}")
    assert [where for where, _ in found] == [location], found


def test_invalid_stage_settings(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        portway: 1
        apis:
          - name: pets
            stages:
              dev:
                throttle: {rate: -1, burst: 5}
                methodThrottles:
                  GET /pets: {rate: 1, burst: -5}
            routes:
              GET /pets: pets.get
        """,
    )
    locations = {where for where, _ in found}
    assert "apis[0].stages.dev.throttle.rate" in locations, found
    assert 'apis[0].stages.dev.methodThrottles["GET /pets"].burst' in locations, found


def test_account_throttle_off_and_per_api_failure_policy(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        throttle: off
        apis:
          - name: pets
            throttleFailure: closed
            routes:
              GET /pets: pets.get
          - name: toys
            basePath: toys
            routes:
              GET /toys: pets.get
        """,
    )
    assert config.account_throttle is None
    assert config.throttle_failure == "open"
    assert [api.throttle_failure for api in config.apis] == ["closed", None]


def test_account_throttle_only_off_as_a_word(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        portway: 1
        throttle: none
        apis:
          - name: pets
            throttleFailure: sometimes
            routes:
              GET /pets: pets.get
        """,
    )
    assert sorted(where for where, _ in found) == ["apis[0].throttleFailure", "throttle"], found


def test_websocket_connection_throttle(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: chat
            type: websocket
            websocket: {connectionThrottle: {rate: 2, burst: 3}}
            routes:
              $default: pets.get
        """,
    )
    assert config.apis[0].websocket.connection_throttle == ThrottleSettings(2.0, 3)
    found = problems(
        tmp_path,
        """
        portway: 1
        apis:
          - name: chat
            type: websocket
            websocket: {connectionThrottle: {rate: -1, burst: 3}}
            routes:
              $default: pets.get
        """,
    )
    assert [where for where, _ in found] == ["apis[0].websocket.connectionThrottle.rate"], found


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("", ThrottleSettings(10.0, 50)),
        ("controlFrameThrottle: {rate: 1, burst: 5}", ThrottleSettings(1.0, 5)),
        ("controlFrameThrottle: null", None),
    ],
)
def test_websocket_control_frame_throttle(
    tmp_path: Path, setting: str, expected: ThrottleSettings | None
) -> None:
    config = load(
        tmp_path,
        f"""
        portway: 1
        apis:
          - name: chat
            type: websocket
            websocket: {{{setting}}}
            routes:
              $default: pets.get
        """,
    )
    assert config.apis[0].websocket.control_frame_throttle == expected
