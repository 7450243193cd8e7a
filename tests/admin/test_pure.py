"""Pure parts of the admin API: routing, shapes and route keys, patch operations, the CSV key
file, GetUsage arithmetic."""

from __future__ import annotations

import datetime
from types import MappingProxyType
from typing import Any

import pytest

from server.admin.csv_import import parse_key_file, split_records
from server.admin.patch import PatchConflict, PatchError, PatchNotFound, apply_plan_patch, key_changes
from server.admin.paths import Operation, is_admin_path, match, parse_query
from server.admin.shapes import aws_route_key, plan_from_aws, plan_shape, plan_to_aws_dict, route_key
from server.admin.usage import daily_usage, days_to_read, parse_date, report_days
from server.config.model import PlanStage, QuotaSettings, ThrottleSettings, UsagePlanConfig
from server.keys.records import InvalidRecord

# -- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/@admin/apikeys", "", Operation("GetApiKeys")),
        ("POST", "/@admin/apikeys", "", Operation("CreateApiKey")),
        ("POST", "/@admin/apikeys", "mode=import&format=csv", Operation("ImportApiKeys")),
        ("GET", "/@admin/apikeys/abc", "", Operation("GetApiKey", {"apiKey": "abc"})),
        ("PATCH", "/@admin/apikeys/abc", "", Operation("UpdateApiKey", {"apiKey": "abc"})),
        ("DELETE", "/@admin/apikeys/abc/", "", Operation("DeleteApiKey", {"apiKey": "abc"})),
        ("POST", "/@admin/apikeys/abc/rotate", "", Operation("RotateApiKey", {"apiKey": "abc"})),
        ("GET", "/@admin/usageplans", "", Operation("GetUsagePlans")),
        ("POST", "/@admin/usageplans", "", Operation("CreateUsagePlan")),
        ("PUT", "/@admin/usageplans/p%201", "", Operation("PutUsagePlan", {"usagePlanId": "p 1"})),
        ("PATCH", "/@admin/usageplans/p", "", Operation("UpdateUsagePlan", {"usagePlanId": "p"})),
        ("DELETE", "/@admin/usageplans/p", "", Operation("DeleteUsagePlan", {"usagePlanId": "p"})),
        ("GET", "/@admin/usageplans/p/keys", "", Operation("GetUsagePlanKeys", {"usagePlanId": "p"})),
        ("POST", "/@admin/usageplans/p/keys", "", Operation("CreateUsagePlanKey", {"usagePlanId": "p"})),
        (
            "GET",
            "/%40admin/usageplans/p/keys/k",
            "",
            Operation("GetUsagePlanKey", {"usagePlanId": "p", "keyId": "k"}),
        ),
        (
            "DELETE",
            "/@admin/usageplans/p/keys/k",
            "",
            Operation("DeleteUsagePlanKey", {"usagePlanId": "p", "keyId": "k"}),
        ),
        ("GET", "/@admin/usageplans/p/usage", "", Operation("GetUsage", {"usagePlanId": "p"})),
        ("PUT", "/@admin/apikeys", "", None),
        ("GET", "/@admin/restapis", "", None),
        ("GET", "/@admin", "", None),
        ("POST", "/@admin/usageplans/p/usage", "", None),
        ("GET", "/@administrator/apikeys", "", None),
    ],
)
def test_match(method: str, path: str, query: str, expected: Operation | None) -> None:
    assert match(method, path, parse_query(query)) == expected


def test_is_admin_path() -> None:
    assert is_admin_path("/@admin") and is_admin_path("/@admin/") and is_admin_path("/%40ADMIN/apikeys")
    assert not is_admin_path("/@adminx") and not is_admin_path("/dev/@admin/apikeys")
    assert not is_admin_path("/dev/@connections/abc")


# -- route keys and shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aws", "ours"),
    [("/pets/GET", "GET /pets"), ("//GET", "GET /"), ("/pets/{id}/DELETE", "DELETE /pets/{id}")],
)
def test_route_keys_both_ways(aws: str, ours: str) -> None:
    assert route_key(aws) == ours
    assert aws_route_key(ours) == aws
    assert route_key(ours) == ours
    if aws != "//GET":
        assert route_key(aws.lstrip("/")) == ours  # methodSettings style: no leading slash


def test_websocket_route_keys_are_kept() -> None:
    assert route_key("sendMessage", websocket=True) == "sendMessage"
    assert aws_route_key("$connect", websocket=True) == "$connect"
    assert route_key("$default") == "$default"
    with pytest.raises(InvalidRecord):
        route_key("pets")


def test_plan_from_aws_and_back() -> None:
    raw = {
        "name": "Basic",
        "description": "d",
        "apiStages": [
            {"apiId": "api", "stage": "dev", "throttle": {"/pets/GET": {"rateLimit": 5, "burstLimit": 2}}},
            {"apiId": "ws", "stage": "prod", "throttle": {"sendMessage": {"rateLimit": 1, "burstLimit": 1}}},
        ],
        "throttle": {"rateLimit": 10, "burstLimit": 5},
        "quota": {"limit": 100, "period": "WEEK"},
    }
    plan = plan_from_aws(raw, "basic", {"ws"})
    assert plan.stages[0].method_throttles == {"GET /pets": ThrottleSettings(5.0, 2)}
    assert plan.stages[1].method_throttles == {"sendMessage": ThrottleSettings(1.0, 1)}
    assert plan.quota == QuotaSettings(100, "WEEK", 0)
    shape = plan_shape(plan, {"ws"})
    assert shape == {
        "id": "basic",
        "name": "Basic",
        "description": "d",
        "apiStages": [
            {"apiId": "api", "stage": "dev", "throttle": {"/pets/GET": {"rateLimit": 5.0, "burstLimit": 2}}},
            {
                "apiId": "ws",
                "stage": "prod",
                "throttle": {"sendMessage": {"rateLimit": 1.0, "burstLimit": 1}},
            },
        ],
        "throttle": {"rateLimit": 10.0, "burstLimit": 5},
        "quota": {"limit": 100, "period": "WEEK", "offset": 0},
    }
    with pytest.raises(InvalidRecord):
        plan_from_aws({**raw, "apiStages": [raw["apiStages"][0], raw["apiStages"][0]]}, "x")
    with pytest.raises(InvalidRecord):
        bad = {"apiId": "api", "stage": "dev", "throttle": {"/p/GET": {}, "GET /p": {}}}
        plan_from_aws({**raw, "apiStages": [bad]}, "x")


# -- patch operations -------------------------------------------------------------------------


def test_key_changes() -> None:
    ops = [
        {"op": "replace", "path": "/enabled", "value": "FALSE"},
        {"op": "replace", "path": "/name", "value": "n"},
        {"op": "replace", "path": "/description", "value": "d"},
        {"op": "replace", "path": "/customerId", "value": "c"},
    ]
    assert key_changes(ops) == {"enabled": False, "name": "n", "description": "d", "customer_id": "c"}
    assert key_changes(None) == {}
    # AWS parses /enabled like Java's Boolean.parseBoolean (recorded: "not-a-boolean" gives false).
    assert key_changes([{"op": "replace", "path": "/enabled", "value": "yes"}]) == {"enabled": False}
    assert key_changes([{"op": "replace", "path": "/enabled", "value": "True"}]) == {"enabled": True}
    for bad in (
        [{"op": "add", "path": "/stages", "value": "a/b"}],
        [{"op": "replace", "path": "/id", "value": "x"}],
        [{"op": "replace", "path": "name", "value": "x"}],
        "nope",
    ):
        with pytest.raises(PatchError):
            key_changes(bad)


def plan_dict() -> dict[str, Any]:
    plan = UsagePlanConfig(
        id="p",
        name="P",
        stages=(PlanStage("api", "dev", MappingProxyType({"GET /pets": ThrottleSettings(5, 2)})),),
        throttle=ThrottleSettings(10, 5),
    )
    return plan_to_aws_dict(plan)


def op(kind: str, path: str, value: str | None = None) -> dict[str, Any]:
    return {"op": kind, "path": path, "value": value}


def test_plan_patch_scalars_throttle_quota() -> None:
    patched = apply_plan_patch(
        plan_dict(),
        [
            op("replace", "/name", "New"),
            op("replace", "/description", "desc"),
            op("replace", "/throttle/rateLimit", "2.5"),
            op("replace", "/quota/limit", "100"),
            op("replace", "/quota/period", "month"),
            op("replace", "/quota/offset", "3"),
        ],
    )
    assert patched["name"] == "New" and patched["description"] == "desc"
    assert patched["throttle"] == {"rateLimit": 2.5, "burstLimit": 5}
    assert patched["quota"] == {"limit": 100, "period": "MONTH", "offset": 3}
    plan = plan_from_aws(patched, "p")
    assert plan.quota == QuotaSettings(100, "MONTH", 3)
    removed = apply_plan_patch(patched, [op("remove", "/throttle"), op("remove", "/quota")])
    assert removed["throttle"] is None and removed["quota"] is None
    # A throttle needs both limits once every operation is applied.
    half = apply_plan_patch(removed, [op("add", "/throttle/rateLimit", "1")])
    with pytest.raises(InvalidRecord):
        plan_from_aws(half, "p")


def test_plan_patch_api_stages_and_method_throttles() -> None:
    patched = apply_plan_patch(
        plan_dict(),
        [
            op("add", "/apiStages", "api:prod"),
            op("replace", "/apiStages/api:dev/throttle/~1pets/GET/rateLimit", "9"),
            op("replace", "/apiStages/api:prod/throttle/pets/{id}/PUT/rateLimit", "1"),
            op("replace", "/apiStages/api:prod/throttle/~1pets~1{id}/PUT/burstLimit", "4"),
        ],
    )
    stages = {entry["stage"]: entry for entry in patched["apiStages"]}
    assert stages["dev"]["throttle"] == {"/pets/GET": {"rateLimit": 9.0, "burstLimit": 2}}
    assert stages["prod"]["throttle"] == {"/pets/{id}/PUT": {"rateLimit": 1.0, "burstLimit": 4}}
    plan = plan_from_aws(patched, "p")
    assert plan.stage_of("api", "prod") is not None
    cleared = apply_plan_patch(
        patched,
        [
            op("remove", "/apiStages/api:prod/throttle/~1pets~1{id}/PUT"),
            op("remove", "/apiStages/api:dev/throttle"),
        ],
    )
    assert all(entry["throttle"] == {} for entry in cleared["apiStages"])
    gone = apply_plan_patch(cleared, [op("remove", "/apiStages", "api:prod")])
    assert [entry["stage"] for entry in gone["apiStages"]] == ["dev"]
    with pytest.raises(PatchConflict):
        apply_plan_patch(plan_dict(), [op("add", "/apiStages", "api:dev")])
    with pytest.raises(PatchNotFound):
        apply_plan_patch(plan_dict(), [op("remove", "/apiStages", "api:prod")])
    with pytest.raises(PatchNotFound):
        apply_plan_patch(plan_dict(), [op("replace", "/apiStages/api:prod/throttle/~1x/GET/rateLimit", "1")])
    with pytest.raises(PatchNotFound):
        apply_plan_patch(plan_dict(), [op("remove", "/apiStages/api:dev/throttle/~1x/GET")])


@pytest.mark.parametrize(
    "bad",
    [
        op("replace", "/productCode", "x"),
        op("copy", "/name"),
        op("replace", "/name", ""),
        op("replace", "/throttle/rateLimit", "fast"),
        op("replace", "/throttle/burstLimit", "1.5"),
        op("replace", "/quota/limit", "lots"),
        op("add", "/apiStages", "nocolon"),
        op("replace", "/apiStages", "api:dev"),
        op("replace", "/apiStages/api:dev/throttle/GET/rateLimit", "1"),
        op("replace", "/apiStages/api:dev/throttle", "{}"),
        op("replace", "/apiStages/api:dev/throttle/~1pets/GET/rateLimit", "inf"),
    ],
)
def test_unsupported_or_malformed_plan_patches(bad: dict[str, Any]) -> None:
    with pytest.raises(PatchError):
        apply_plan_patch(plan_dict(), [bad])


def test_websocket_method_throttle_patch() -> None:
    raw = {"id": "w", "name": "W", "apiStages": [{"apiId": "ws", "stage": "prod", "throttle": {}}]}
    patched = apply_plan_patch(
        raw,
        [
            op("add", "/apiStages/ws:prod/throttle/sendMessage/rateLimit", "3"),
            op("add", "/apiStages/ws:prod/throttle/sendMessage/burstLimit", "1"),
        ],
        {"ws"},
    )
    assert patched["apiStages"][0]["throttle"] == {"sendMessage": {"rateLimit": 3.0, "burstLimit": 1}}


# -- CSV key file -----------------------------------------------------------------------------

KEY_A = "apikey1234abcdefghij0123456789"
KEY_B = "apikey1234abcdefghij9876543210"


def test_key_file_aws_examples() -> None:
    first = parse_key_file(f"Key,name\n{KEY_A},MyFirstApiKey\n")
    assert [(row.name, row.value, row.enabled, row.plans) for row in first.rows] == [
        ("MyFirstApiKey", KEY_A, True, None)
    ]
    second = parse_key_file(
        f"Name,key,description,Enabled,usageplanIds\nMyFirstApiKey,{KEY_A},An imported key,TRUE,c7y23b\n"
    )
    row = second.rows[0]
    assert (row.description, row.enabled, row.plans) == ("An imported key", True, ("c7y23b",))
    third = parse_key_file(f'Enabled,Name,key,UsageplanIds\ntrue,MyFirstApiKey,{KEY_A},"c7y23b,glvrsr"\n')
    assert third.rows[0].plans == ("c7y23b", "glvrsr")
    single = parse_key_file(f"Enabled,Name,key,UsageplanIds,Other\r\nfalse,K,{KEY_A},'a, b',x\r\n")
    assert single.rows[0].plans == ("a", "b") and single.rows[0].enabled is False
    assert not (first.warnings or second.warnings or third.warnings or single.warnings)


def test_key_file_warnings() -> None:
    parsed = parse_key_file(
        "\ufeffname,key,enabled\n"
        f"ok,{KEY_A},\n"
        "\n"
        "short,abc,true\n"
        f",{KEY_B},true\n"
        f"maybe,{KEY_B},perhaps\n"
        f"dup,{KEY_A},true\n"
        f"{'x' * 1025},{KEY_B},true\n"
    )
    assert [row.name for row in parsed.rows] == ["ok"]
    assert parsed.warnings == (
        "line 4: Key: an API key value is 20 to 128 letters and digits",
        "line 5: Name is required and at most 1024 characters",
        "line 6: Enabled must be true or false, not 'perhaps'",
        "line 7: the same Key is on line 2",
        "line 8: Name is required and at most 1024 characters",
    )
    for bad in ("", "name,value\nx,y\n", "\n\n"):
        with pytest.raises(InvalidRecord):
            parse_key_file(bad)


def test_split_records_quotes_and_newlines() -> None:
    assert split_records('a,"b ""q"", c",d\n\'x\ny\',z') == [(1, ["a", 'b "q", c', "d"]), (2, ["x\ny", "z"])]
    assert split_records("O'Brien,k\n") == [(1, ["O'Brien", "k"])]


# -- GetUsage arithmetic ----------------------------------------------------------------------


def day(text: str) -> datetime.date:
    return parse_date(text, "date")


def test_parse_date_and_range() -> None:
    assert day("2026-03-01") == datetime.date(2026, 3, 1)
    for bad in (None, "", "2026-3-1x", "yesterday"):
        with pytest.raises(InvalidRecord):
            parse_date(bad, "startDate")
    with pytest.raises(InvalidRecord):
        report_days(day("2026-03-02"), day("2026-03-01"))
    with pytest.raises(InvalidRecord):
        report_days(day("2025-01-01"), day("2026-03-01"))
    assert len(report_days(day("2026-01-01"), day("2026-12-31"))) == 365


def test_usage_without_quota_reports_zero_remaining() -> None:
    counts = {"20260301": 4, "20260303": 1}
    assert days_to_read(None, None, day("2026-03-01"), day("2026-03-03")) == report_days(
        day("2026-03-01"), day("2026-03-03")
    )
    assert daily_usage(None, None, day("2026-03-01"), day("2026-03-03"), counts) == [[4, 0], [0, 0], [1, 0]]


def test_usage_remaining_counts_the_whole_quota_window() -> None:
    quota = QuotaSettings(100, "MONTH")
    # The report starts mid-month: the month's earlier days count against the quota too.
    days = days_to_read(quota, None, day("2026-03-10"), day("2026-04-02"))
    assert days[0] == day("2026-03-01") and days[-1] == day("2026-04-02")
    counts = {"20260302": 30, "20260310": 5, "20260311": 70, "20260401": 2}
    usage = daily_usage(quota, None, day("2026-03-10"), day("2026-04-02"), counts)
    assert len(usage) == 24
    assert usage[0] == [5, 65] and usage[1] == [70, 0] and usage[2] == [0, 0]
    assert usage[-2] == [2, 98] and usage[-1] == [0, 98]  # a new month, a new allowance


def test_usage_daily_and_weekly_windows_and_offset() -> None:
    counts = {"20260301": 3, "20260302": 4}
    assert daily_usage(QuotaSettings(5, "DAY"), None, day("2026-03-01"), day("2026-03-02"), counts) == [
        [3, 2],
        [4, 1],
    ]
    # 2026-03-01 is a Sunday: a WEEK window starts there (0 = Sunday).
    weekly = daily_usage(QuotaSettings(10, "WEEK"), None, day("2026-02-28"), day("2026-03-02"), counts)
    assert weekly == [[0, 10], [3, 7], [4, 3]]
    # offset: subtracted in the window the plan was created in.
    created = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC).timestamp()
    offset = daily_usage(QuotaSettings(10, "DAY", 2), created, day("2026-03-01"), day("2026-03-02"), counts)
    assert offset == [[3, 5], [4, 6]]
