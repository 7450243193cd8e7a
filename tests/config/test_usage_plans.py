"""API keys, usage plans and related settings (aws-contract.md §3.2, §3.3) in both config formats."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import (
    ApiKeyConfig,
    ApiKind,
    GatewayConfig,
    PlanStage,
    QuotaSettings,
    ThrottleSettings,
    UsagePlanConfig,
    WebSocketSettings,
)
from server.config.rules import API_KEY_NAME_RULE, API_KEY_VALUE_RULE, PLAN_ID_RULE
from server.config.schema import SCHEMA_PATH
from server.ids import new_api_id

VALUE = "abcdefghij0123456789"  # 20 letters and digits: the shortest value AWS accepts
OTHER = "ZYXWVUTSRQ9876543210abc"
AWS_DEFAULT = ThrottleSettings(10000, 5000)

# Native documents: the APIs every test uses, then the test's own sections.
APIS = """\
apis:
  - name: petstore
    stages: [dev, prod]
    routes:
      GET /pets: {python: pets.get, apiKeyRequired: true}
      GET /pets/{id}: {python: pets.get, apiKeyRequired: true}
      GET /: pets.get
  - name: chat
    type: websocket
    routes:
      $connect: {python: pets.get, apiKeyRequired: true}
      sendMessage: pets.get
  - name: web
    type: http
    routes:
      $default: pets.get
  - name: open
    basePath: open
    routes:
      GET /open: pets.get
"""


def native(tmp_path: Path, sections: str, stage: str | None = None, apis: str = APIS) -> GatewayConfig:
    return load_config(_native_file(tmp_path, sections, apis), stage=stage)


def native_problems(tmp_path: Path, sections: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(_native_file(tmp_path, sections))
    return [(issue.location, issue.message) for issue in info.value.issues]


def _native_file(tmp_path: Path, sections: str, apis: str = APIS) -> Path:
    (tmp_path / "pets.py").write_text("def get(event, context):\n    return {}\n")
    path = tmp_path / "portway.yaml"
    path.write_text("portway: 1\n" + textwrap.dedent(sections) + apis)
    return path


def serverless(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> GatewayConfig:
    return load_config(_serverless_file(tmp_path, text), env=env or {})


def serverless_problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(_serverless_file(tmp_path, text), env={})
    return [(issue.location, issue.message) for issue in info.value.issues]


def _serverless_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "handler.py").write_text("def hello(event, context):\n    return {}\n")
    path = tmp_path / "serverless.yml"
    path.write_text(textwrap.dedent(text).replace("@FUNCTIONS@\n", FUNCTIONS))
    return path


def plans(config: GatewayConfig) -> dict[str, UsagePlanConfig]:
    return {plan.id: plan for plan in config.usage_plans}


def keys(config: GatewayConfig) -> dict[str, ApiKeyConfig]:
    return {key.name: key for key in config.api_keys}


def throttles(stage: PlanStage) -> dict[str, ThrottleSettings]:
    return dict(stage.method_throttles)


PETS = new_api_id("petstore")
CHAT = new_api_id("chat")


# -- native format -------------------------------------------------------------------------------


def test_native_defaults_without_plans_or_keys(tmp_path: Path) -> None:
    config = native(tmp_path, "")
    assert config.usage_plans == () and config.api_keys == ()
    assert config.rate_limit_headers is False
    chat = next(api for api in config.apis if api.kind is ApiKind.WEBSOCKET)
    assert chat.websocket.flood_refusals == 100 and chat.websocket.flood_window_s == 10.0
    assert chat.websocket == WebSocketSettings()
    assert config.warnings == ()


def test_native_full_form(tmp_path: Path) -> None:
    config = native(
        tmp_path,
        f"""\
        rateLimitHeaders: true
        usagePlans:
          basic:
            name: Basic
            description: the free tier
            throttle: {{rate: 10, burst: 20}}
            quota: {{limit: 1000, period: WEEK, offset: 10}}
            apis:
              - api: petstore
                stage: dev
                methodThrottles:
                  "get  /pets": {{rate: 1, burst: 2}}
                  /pets/{{id}}/GET: {{rate: 3.5, burst: 4}}
                  //GET: {{rate: 5, burst: 6}}
              - api: chat
                stage: dev
                methodThrottles:
                  $connect: {{rate: 7, burst: 8}}
          gold:
            apis: [{{api: petstore, stage: prod}}]
        apiKeys:
          - name: alice
            value: {VALUE}
            enabled: false
            description: Alice's key
            plans: [basic, gold]
          - name: bob
        """,
    )
    assert config.rate_limit_headers is True
    basic, gold = config.usage_plans
    assert basic == UsagePlanConfig(
        id="basic",
        name="Basic",
        stages=basic.stages,
        throttle=ThrottleSettings(10, 20),
        quota=QuotaSettings(1000, "WEEK", 10),
        description="the free tier",
    )
    pets_dev, chat_dev = basic.stages
    assert (pets_dev.api_id, pets_dev.stage) == (PETS, "dev")
    assert throttles(pets_dev) == {
        "GET /pets": ThrottleSettings(1, 2),
        "GET /pets/{id}": ThrottleSettings(3.5, 4),
        "GET /": ThrottleSettings(5, 6),
    }
    assert (chat_dev.api_id, chat_dev.stage) == (CHAT, "dev")
    assert throttles(chat_dev) == {"$connect": ThrottleSettings(7, 8)}
    assert basic.stage_of(PETS, "dev") is pets_dev and basic.stage_of(PETS, "prod") is None
    # Defaults: the name is the id, no limits, no description.
    assert gold == UsagePlanConfig("gold", "gold", (PlanStage(PETS, "prod"),))
    assert config.api_keys == (
        ApiKeyConfig("alice", VALUE, False, ("basic", "gold"), "Alice's key"),
        ApiKeyConfig("bob"),  # value generated at start, enabled, in no plan
    )
    assert config.warnings == ()


def test_native_quota_defaults(tmp_path: Path) -> None:
    config = native(
        tmp_path,
        """\
        usagePlans:
          basic:
            quota: {limit: 0}
            apis: [{api: petstore, stage: dev}]
        """,
    )
    assert plans(config)["basic"].quota == QuotaSettings(0, "DAY", 0)


def test_native_stage_option_keeps_plans_of_other_stages_valid(tmp_path: Path) -> None:
    """--stage serves one stage: a plan's other stages are dropped, not errors."""
    sections = """\
        usagePlans:
          basic:
            apis: [{api: petstore, stage: dev}, {api: petstore, stage: prod}, {api: chat, stage: dev}]
        apiKeys: [{name: alice, plans: [basic]}]
        """
    apis = APIS.split("  - name: web")[0]
    config = native(tmp_path, sections, stage="dev", apis=apis)
    assert [(s.api_id, s.stage) for s in plans(config)["basic"].stages] == [(PETS, "dev"), (CHAT, "dev")]
    apis = APIS.split("  - name: chat")[0]
    config = native(tmp_path, sections.replace(", {api: chat, stage: dev}", ""), stage="prod", apis=apis)
    assert [(s.api_id, s.stage) for s in plans(config)["basic"].stages] == [(PETS, "prod")]


def test_stage_method_throttles_accept_aws_keys(tmp_path: Path) -> None:
    path = tmp_path / "portway.yaml"
    (tmp_path / "pets.py").write_text("")
    path.write_text(
        textwrap.dedent(
            """\
            portway: 1
            apis:
              - name: pets
                stages:
                  dev:
                    methodThrottles:
                      /pets/GET: {rate: 1, burst: 2}
                      pets/{id}/get: {rate: 3, burst: 4}
                routes:
                  GET /pets: pets.get
                  GET /pets/{id}: pets.get
            """
        )
    )
    (stage,) = load_config(path).apis[0].stages
    assert dict(stage.method_throttles) == {
        "GET /pets": ThrottleSettings(1, 2),
        "GET /pets/{id}": ThrottleSettings(3, 4),
    }


def test_native_websocket_flood_settings(tmp_path: Path) -> None:
    (tmp_path / "pets.py").write_text("")
    path = tmp_path / "portway.yaml"
    for settings, refusals, window in (
        ("{floodRefusals: null, floodWindow: 2}", None, 2.0),
        ("{floodRefusals: 3, floodWindow: 0.5}", 3, 0.5),
    ):
        path.write_text(
            "portway: 1\napis:\n  - name: chat\n    type: websocket\n"
            f"    websocket: {settings}\n    routes:\n      $default: pets.get\n"
        )
        websocket = load_config(path).apis[0].websocket
        assert (websocket.flood_refusals, websocket.flood_window_s) == (refusals, window)
        assert isinstance(websocket.flood_window_s, float)


@pytest.mark.parametrize(
    ("settings", "location"),
    [
        ("{floodRefusals: 0}", "apis[0].websocket.floodRefusals"),
        ("{floodRefusals: 1.5}", "apis[0].websocket.floodRefusals"),
        ("{floodWindow: 0}", "apis[0].websocket.floodWindow"),
        ("{floodWindow: null}", "apis[0].websocket.floodWindow"),
    ],
)
def test_native_websocket_flood_settings_invalid(tmp_path: Path, settings: str, location: str) -> None:
    (tmp_path / "pets.py").write_text("")
    path = tmp_path / "portway.yaml"
    path.write_text(
        "portway: 1\napis:\n  - name: chat\n    type: websocket\n"
        f"    websocket: {settings}\n    routes:\n      $default: pets.get\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [issue.location for issue in info.value.issues] == [location]


def test_native_warns_when_no_route_requires_a_key(tmp_path: Path) -> None:
    config = native(
        tmp_path,
        """\
        usagePlans:
          basic:
            apis: [{api: petstore, stage: dev}, {api: open, stage: dev}]
        """,
    )
    assert config.warnings == (
        "usagePlans.basic.apis[1]: no route of API 'open' requires an API key (apiKeyRequired: true): "
        "this plan never applies to it",
    )
    assert len(plans(config)["basic"].stages) == 2


def test_native_plan_errors(tmp_path: Path) -> None:
    found = native_problems(
        tmp_path,
        """\
        usagePlans:
          basic:
            quota: {limit: 10, offset: 10}
            apis:
              - {api: nope, stage: dev}
              - {api: petstore, stage: test}
              - {api: web, stage: $default}
              - api: petstore
                stage: dev
                methodThrottles:
                  GET /cats: {rate: 1, burst: 1}
                  GET /pets: {rate: 1, burst: 1}
                  /pets/GET: {rate: 2, burst: 2}
              - {api: petstore, stage: dev}
              - api: chat
                stage: dev
                methodThrottles:
                  missing: {rate: 1, burst: 1}
        """,
    )
    at = "usagePlans.basic"
    messages = dict(found)
    assert len(messages) == len(found) == 8, found
    assert messages[f"{at}.quota.offset"].startswith("offset 10 must be less than limit 10")
    assert (
        messages[f"{at}.apis[0].api"] == "no API named 'nope' in this file (APIs: chat, open, petstore, web)"
    )
    assert messages[f"{at}.apis[1].stage"] == "API 'petstore' has no stage 'test' (stages: dev, prod)"
    assert messages[f"{at}.apis[2].api"] == "HTTP APIs have no usage plans or API keys (use a REST API)"
    same = messages[f'{at}.apis[3].methodThrottles["/pets/GET"]']
    assert "same route" in same and "'GET /pets'" in same
    assert messages[f'{at}.apis[3].methodThrottles["GET /cats"]'].startswith(
        "no route 'GET /cats' in this API"
    )
    assert messages[f"{at}.apis[4]"] == (
        "stage 'dev' of API 'petstore' is already in this plan (usagePlans.basic.apis[3])"
    )
    missing = messages[f"{at}.apis[5].methodThrottles.missing"]
    assert missing.startswith("no route 'missing' in this API") and "$connect" in missing


def test_native_key_errors(tmp_path: Path) -> None:
    found = native_problems(
        tmp_path,
        f"""\
        usagePlans:
          basic:
            apis: [{{api: petstore, stage: dev}}, {{api: chat, stage: dev}}]
          pro:
            apis: [{{api: chat, stage: dev}}]
          other:
            apis: [{{api: petstore, stage: prod}}]
        apiKeys:
          - name: alice
            value: {VALUE}
            plans: [basic, ghost, other, pro]
          - name: alice
          - name: carol
            value: {VALUE}
          - name: dave
            value: abcdefghij-123456789
          - name: erin
            value: abc
          - name: frank
            value: {"a" * 129}
          - name: "{"n" * 1025}"
        """,
    )
    assert found == [
        ("apiKeys[3].value", API_KEY_VALUE_RULE),
        ("apiKeys[4].value", API_KEY_VALUE_RULE),
        ("apiKeys[5].value", API_KEY_VALUE_RULE),
        ("apiKeys[6].name", API_KEY_NAME_RULE),
        ("apiKeys[0].plans[1]", "no usage plan 'ghost' (plans: basic, other, pro)"),
        (
            "apiKeys[0].plans[3]",
            "API key 'alice' is in usage plans 'basic' and 'pro', which both include stage 'dev' of API "
            "'chat'; a key may be in at most one plan per API stage",
        ),
        ("apiKeys[1].name", "API key name 'alice' is already used by apiKeys[0].name"),
        (
            "apiKeys[2].value",
            "API key 'carol' has the same value as API key 'alice' (apiKeys[0].value); values are unique",
        ),
    ]


@pytest.mark.parametrize(
    ("sections", "location"),
    [
        ("usagePlans:\n  basic: {apis: []}\n", "usagePlans.basic.apis"),
        ("usagePlans:\n  basic: {}\n", "usagePlans.basic"),
        ("usagePlans:\n  'a b': {apis: [{api: petstore, stage: dev}]}\n", 'usagePlans["a b"]'),
        ("usagePlans:\n  p: {apis: [{api: petstore}]}\n", "usagePlans.p.apis[0]"),
        ("usagePlans:\n  p: {apis: [{api: petstore, stage: dev, x: 1}]}\n", "usagePlans.p.apis[0].x"),
        ("usagePlans:\n  p: {quota: {limit: 1, period: YEAR}, apis: []}\n", "usagePlans.p.apis"),
        (
            "usagePlans:\n  p: {throttle: {rate: 1}, apis: [{api: petstore, stage: dev}]}\n",
            "usagePlans.p.throttle",
        ),
        (
            "usagePlans:\n  p: {quota: {limit: -1}, apis: [{api: petstore, stage: dev}]}\n",
            "usagePlans.p.quota.limit",
        ),
        ("apiKeys: [{value: abc}]\n", "apiKeys[0]"),
        ("apiKeys: [{name: a, plans: [x, x]}]\n", "apiKeys[0].plans"),
        ("apiKeys: [{name: a, enabled: yes}]\n", "apiKeys[0].enabled"),
        ("apiKeys: [{name: a, value: 12345678901234567890}]\n", "apiKeys[0].value"),
        ("rateLimitHeaders: 1\n", "rateLimitHeaders"),
    ],
)
def test_native_schema_errors(tmp_path: Path, sections: str, location: str) -> None:
    found = native_problems(tmp_path, sections)
    assert location in [where for where, _ in found], found


def test_native_plan_id_message(tmp_path: Path) -> None:
    found = native_problems(tmp_path, "usagePlans:\n  'a b': {apis: [{api: petstore, stage: dev}]}\n")
    assert found == [('usagePlans["a b"]', PLAN_ID_RULE)]


def test_schema_messages_match_the_loaders() -> None:
    """A value checked by both the schema and check_api_keys is reported once: same wording."""
    defs = json.loads(SCHEMA_PATH.read_text())["$defs"]
    key = defs["apiKey"]["properties"]
    assert key["value"]["x-messages"] == {"pattern": API_KEY_VALUE_RULE}
    assert key["name"]["x-messages"] == {"minLength": API_KEY_NAME_RULE, "maxLength": API_KEY_NAME_RULE}
    assert defs["planId"]["x-messages"] == {"pattern": PLAN_ID_RULE}


# -- serverless.yml ------------------------------------------------------------------------------

FUNCTIONS = """\
functions:
  hello:
    handler: handler.hello
    events:
      - http: {path: user/create, method: get, private: true}
      - http: GET open
"""


def test_serverless_form_1(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        f"""\
        service: my-service
        provider:
          name: aws
          stage: ${{opt:stage, 'dev'}}
          apiGateway:
            apiKeys:
              - myFirstKey
              - ${{opt:stage, 'dev'}}-myFirstKey
              - ${{env:MY_API_KEY}}
              - name: myThirdKey
                value: myThirdKeyValue0123456789
              - value: {OTHER}
                description: Api key description
                customerId: A string that will be set as the customerID for the key
              - name: off
                enabled: false
            usagePlan:
              quota: {{limit: 5000, offset: 2, period: MONTH}}
              throttle: {{burstLimit: 200, rateLimit: 100}}
        @FUNCTIONS@
        """,
        env={"MY_API_KEY": "fromEnv"},
    )
    (api,) = config.apis
    assert {route.route_key: route.api_key_required for route in api.routes} == {
        "GET /user/create": True,
        "GET /open": False,
    }
    (plan,) = config.usage_plans
    assert plan == UsagePlanConfig(
        id="my-service-dev",
        name="my-service-dev",
        stages=(PlanStage(api.id, "dev"),),
        throttle=ThrottleSettings(100, 200),
        quota=QuotaSettings(5000, "MONTH", 2),
        description="Usage plan for my-service dev stage",
    )
    plan_ids = ("my-service-dev",)
    assert config.api_keys == (
        ApiKeyConfig("myFirstKey", plans=plan_ids),
        ApiKeyConfig("dev-myFirstKey", plans=plan_ids),
        ApiKeyConfig("fromEnv", plans=plan_ids),
        ApiKeyConfig("myThirdKey", "myThirdKeyValue0123456789", plans=plan_ids),
        # No name: the one CloudFormation derives from the logical id (without its random suffix).
        ApiKeyConfig(
            "my-service-dev-ApiGatewayApiKey5", OTHER, plans=plan_ids, description="Api key description"
        ),
        ApiKeyConfig("off", enabled=False, plans=plan_ids),
    )
    assert config.warnings == ()


def test_serverless_keys_without_usage_plan_get_a_plan_without_limits(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        provider:
          stage: prod
          apiGateway:
            apiKeys: [k1]
        @FUNCTIONS@
        """,
    )
    (plan,) = config.usage_plans
    assert (plan.id, plan.throttle, plan.quota) == ("svc-prod", None, None)
    assert plan.stages == (PlanStage(config.apis[0].id, "prod"),)
    assert config.api_keys == (ApiKeyConfig("k1", plans=("svc-prod",)),)


def test_serverless_usage_plan_without_keys(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway:
            usagePlan: {quota: {limit: 10}}
        @FUNCTIONS@
        """,
    )
    (plan,) = config.usage_plans
    assert (plan.id, plan.quota, plan.throttle) == ("svc-dev", QuotaSettings(10, "DAY", 0), None)
    assert config.api_keys == ()


def test_serverless_form_2(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        f"""\
        service: my-service
        provider:
          apiGateway:
            apiKeys:
              - free:
                  - myFreeKey
                  - {{name: other, value: {VALUE}}}
                  - {{value: {OTHER}}}
              - paid: [myPaidKey]
            usagePlan:
              - free:
                  quota: {{limit: 5000, offset: 2, period: MONTH}}
                  throttle: {{burstLimit: 200, rateLimit: 100}}
              - paid:
                  quota: {{limit: 50000, offset: 1, period: WEEK}}
                  throttle: {{burstLimit: 2000, rateLimit: 1000.5}}
              - unused:
        @FUNCTIONS@
        """,
        {"x": "y"},
    )
    stages = (PlanStage(config.apis[0].id, "dev"),)
    assert config.usage_plans == (
        UsagePlanConfig(
            "my-service-free-dev",
            "my-service-free-dev",
            stages,
            ThrottleSettings(100, 200),
            QuotaSettings(5000, "MONTH", 2),
            'Usage plan "free" for my-service dev stage',
        ),
        UsagePlanConfig(
            "my-service-paid-dev",
            "my-service-paid-dev",
            stages,
            ThrottleSettings(1000.5, 2000),
            QuotaSettings(50000, "WEEK", 1),
            'Usage plan "paid" for my-service dev stage',
        ),
        UsagePlanConfig(
            "my-service-unused-dev",
            "my-service-unused-dev",
            stages,
            description='Usage plan "unused" for my-service dev stage',
        ),
    )
    assert config.api_keys == (
        ApiKeyConfig("myFreeKey", plans=("my-service-free-dev",)),
        ApiKeyConfig("other", VALUE, plans=("my-service-free-dev",)),
        ApiKeyConfig("my-service-dev-ApiGatewayApiKeyFree3", OTHER, plans=("my-service-free-dev",)),
        ApiKeyConfig("myPaidKey", plans=("my-service-paid-dev",)),
    )


def test_serverless_warns_when_no_route_is_private(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway: {apiKeys: [k]}
        functions:
          hello: {handler: handler.hello, events: [{http: GET open}]}
        """,
    )
    assert config.warnings == (
        "provider.apiGateway.apiKeys: no route of API 'svc' requires an API key (private: true): "
        "this plan never applies to it",
    )


def test_serverless_keys_without_a_rest_api_are_ignored(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway: {apiKeys: [k], usagePlan: {quota: {limit: 1}}}
        functions:
          hello: {handler: handler.hello, events: [{httpApi: GET /x}]}
        """,
    )
    assert config.usage_plans == () and config.api_keys == ()
    assert config.warnings == (
        "provider.apiGateway: usagePlan and apiKeys apply to the REST API of `http` events, and there "
        "is none (ignored)",
    )


def test_serverless_short_value_is_an_error(tmp_path: Path) -> None:
    """serverless's own documentation example (`myThirdKeyValue`) is rejected by AWS at deploy."""
    found = serverless_problems(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway:
            apiKeys:
              - name: myThirdKey
                value: myThirdKeyValue
        @FUNCTIONS@
        """,
    )
    assert found == [("provider.apiGateway.apiKeys[0].value", API_KEY_VALUE_RULE)]
    assert "20 to 128 letters and digits" in API_KEY_VALUE_RULE and "AWS" in API_KEY_VALUE_RULE


def test_serverless_key_errors(tmp_path: Path) -> None:
    found = serverless_problems(
        tmp_path,
        f"""\
        service: svc
        provider:
          apiGateway:
            apiKeys:
              - free: [a, {{name: b, value: {VALUE}}}]
              - paid: [a, {{name: c, value: {VALUE}, enabled: 1, extra: 2}}, {{name: d, value: {VALUE}}}]
              - loose
              - gold: [x]
              - [nested]
            usagePlan:
              - free: {{}}
              - paid:
        @FUNCTIONS@
        """,
    )
    at = "provider.apiGateway.apiKeys"
    assert found == [
        (f"{at}[1].paid[1].extra", "unknown key 'extra' (use name, value, description, customerId, enabled)"),
        (f"{at}[1].paid[1].enabled", "enabled must be true or false"),
        (f"{at}[2]", "with several usage plans, list each key under its plan's name: `- free: [myKey]`"),
        (f"{at}[3].gold", "API key group 'gold' has no usage plan defined (plans: free, paid)"),
        (f"{at}[4]", "with several usage plans, list each key under its plan's name: `- free: [myKey]`"),
        (f"{at}[1].paid[0]", f"API key name 'a' is already used by {at}[0].free[0]"),
        (
            f"{at}[1].paid[2].value",
            f"API key 'd' has the same value as API key 'b' ({at}[0].free[1].value); values are unique",
        ),
    ]


def test_serverless_group_needs_named_plans(tmp_path: Path) -> None:
    found = serverless_problems(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway:
            apiKeys: [{free: [a]}, 7, null]
            usagePlan: {quota: {limit: 1}}
        @FUNCTIONS@
        """,
    )
    assert found == [
        (
            "provider.apiGateway.apiKeys[0].free",
            "API key group 'free' has no usage plan defined (usagePlan is not a list of named plans)",
        ),
        (
            "provider.apiGateway.apiKeys[2]",
            "an API key is a name or {name, value, description, customerId, enabled}",
        ),
    ]


def test_serverless_plan_errors(tmp_path: Path) -> None:
    found = serverless_problems(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway:
            usagePlan:
              - free:
                  quota: {limit: 5, offset: 5, period: MONTH}
                  throttle: {rateLimit: 1}
              - paid:
                  quota: {offset: 1, period: YEAR, extra: 1}
                  throttle: {rateLimit: -1, burstLimit: 1.5}
                  other: 1
              - free: {}
              - 'bad name': {}
              - [x]
        @FUNCTIONS@
        """,
    )
    at = "provider.apiGateway.usagePlan"
    assert found == [
        (f"{at}[0].free.quota.offset", found[0][1]),
        (f"{at}[0].free.throttle", "missing burstLimit"),
        (f"{at}[1].paid.other", "unknown key 'other' (a usage plan has quota and throttle)"),
        (f"{at}[1].paid.quota.extra", "unknown key 'extra' (use limit, offset, period)"),
        (f"{at}[1].paid.quota", "missing limit"),
        (f"{at}[1].paid.throttle.burstLimit", "1.5 is not an integer >= 0"),
        (f"{at}[1].paid.throttle.rateLimit", "-1 is not a number >= 0"),
        (f"{at}[2].free", "usage plan 'free' is defined twice"),
        (
            f'{at}[3]["bad name"]',
            f"usage plan 'bad name' makes the plan id 'svc-bad name-dev': {PLAN_ID_RULE}",
        ),
        (f"{at}[4]", "a usage plan of the list is `- name: {quota, throttle}`"),
    ]
    assert found[0][1].startswith("offset 5 must be less than limit 5")


def test_serverless_form_1_invalid_limits(tmp_path: Path) -> None:
    found = serverless_problems(
        tmp_path,
        """\
        service: svc
        provider:
          apiGateway:
            usagePlan:
              quota: {limit: -1, period: day}
              throttle: 5
        @FUNCTIONS@
        """,
    )
    at = "provider.apiGateway.usagePlan"
    assert found == [
        (f"{at}.quota.limit", "-1 is not an integer >= 0"),
        (f"{at}.quota.period", "period 'day': use DAY, WEEK or MONTH"),
        (f"{at}.throttle", "expected a mapping of burstLimit, rateLimit"),
    ]
    found = serverless_problems(
        tmp_path,
        "service: svc\nprovider:\n  apiGateway:\n    usagePlan: 3\n    apiKeys: k\n@FUNCTIONS@\n",
    )
    assert found == [
        (at, "usagePlan is {quota, throttle}, or a list of `- name: {quota, throttle}`"),
        ("provider.apiGateway.apiKeys", "apiKeys must be a list"),
    ]


# -- serverless.yml: per-endpoint throttling (serverless-api-gateway-throttling) -----------------


def test_serverless_http_event_throttling(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        plugins: [serverless-api-gateway-throttling]
        functions:
          hello:
            handler: handler.hello
            events:
              - http:
                  path: items
                  method: get
                  throttling: {maxRequestsPerSecond: 2000, maxConcurrentRequests: 1000}
              - http: {path: 'item/{id}', method: get, throttling: {maxRequestsPerSecond: 300}}
              - http: {path: item, method: post}
              - http: {path: off, method: get, throttling: {disabled: true}}
              - httpApi: {path: /h, method: get, throttling: {maxConcurrentRequests: 3}}
        """,
    )
    rest, http = config.apis
    (stage,) = rest.stages
    assert stage.throttle is None  # no custom.apiGatewayThrottling: AWS's defaults
    assert dict(stage.method_throttles) == {
        "GET /items": ThrottleSettings(2000, 1000),
        "GET /item/{id}": ThrottleSettings(300, 5000),  # the missing value: the stage's (AWS's default)
    }
    assert dict(http.stages[0].method_throttles) == {"GET /h": ThrottleSettings(10000, 3)}
    assert config.warnings == ()


def test_serverless_stage_throttling_is_inherited(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        plugins: {modules: [serverless-api-gateway-throttling]}
        custom:
          apiGatewayThrottling: {maxRequestsPerSecond: 100}
        functions:
          hello:
            handler: handler.hello
            events:
              - http: {path: a, method: get, throttling: {maxConcurrentRequests: 7}}
              - http: {path: b, method: get, throttling: {disabled: true}}
              - http: {path: c, method: get}
              - httpApi: GET /h
        """,
    )
    rest, http = config.apis
    (stage,) = rest.stages
    assert stage.throttle == ThrottleSettings(100, 5000)
    assert dict(stage.method_throttles) == {
        "GET /a": ThrottleSettings(100, 7),
        "GET /b": AWS_DEFAULT,  # disabled: no method limit beyond the account's
    }
    assert http.stages[0].throttle == ThrottleSettings(100, 5000)
    assert config.warnings == ()


def test_serverless_throttling_without_the_plugin_warns(tmp_path: Path) -> None:
    config = serverless(
        tmp_path,
        """\
        service: svc
        functions:
          hello:
            handler: handler.hello
            events:
              - http: {path: a, method: get}
              - http: {path: b, method: get, throttling: {maxRequestsPerSecond: 1, maxConcurrentRequests: 1}}
        """,
    )
    assert dict(config.apis[0].stages[0].method_throttles) == {"GET /b": ThrottleSettings(1, 1)}
    (warning,) = config.warnings
    assert warning.startswith("functions.hello.events[1].http.throttling: throttling settings belong to")
    assert "serverless-api-gateway-throttling" in warning


def test_serverless_throttling_errors(tmp_path: Path) -> None:
    found = serverless_problems(
        tmp_path,
        """\
        service: svc
        plugins: [serverless-api-gateway-throttling]
        custom:
          apiGatewayThrottling: {maxRequestsPerSecond: -5}
        functions:
          hello:
            handler: handler.hello
            events:
              - http: {path: a, method: get, throttling: {maxConcurrentRequests: 1.5, rate: 1}}
              - http: {path: b, method: get, throttling: 5}
        """,
    )
    assert found == [
        ("custom.apiGatewayThrottling.maxRequestsPerSecond", "-5 is not a number >= 0"),
        (
            "functions.hello.events[0].http.throttling.rate",
            "unknown key 'rate' (use maxRequestsPerSecond, maxConcurrentRequests)",
        ),
        ("functions.hello.events[0].http.throttling.maxConcurrentRequests", "1.5 is not an integer >= 0"),
        (
            "functions.hello.events[1].http.throttling",
            "expected {maxRequestsPerSecond: N, maxConcurrentRequests: N}",
        ),
    ]
