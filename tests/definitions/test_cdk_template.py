"""A CloudFormation template in the shape ``cdk synth`` gives a ``LambdaRestApi`` (plus a MOCK and an
IAM-protected HTTP_PROXY method), served end to end: ``tests/fixtures/cdk`` holds the template and
the function's asset folder, as ``cdk.out`` does."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import ApiKind

CDK = Path(__file__).resolve().parents[1] / "fixtures" / "cdk" / "HelloStack.template.json"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_cdk_rest_api_serves_lambda_proxy_mock_and_iam_routes(aiohttp_client: Client) -> None:
    config = load_config(CDK)
    assert config.warnings == ()
    (api,) = config.apis
    assert (api.name, api.kind, api.stages[0].name) == ("Endpoint", ApiKind.REST, "prod")
    assert [route.route_key for route in api.routes] == [
        "ANY /{proxy+}",
        "ANY /",
        "GET /health",
        "GET /health/backend",
    ]
    client = await aiohttp_client(create_app(config))

    root = await client.post("/prod/")
    assert (root.status, await root.json()) == (200, {"resource": "/", "path": "/", "stage": "prod"})
    deep = await client.get("/prod/a/b")
    assert (deep.status, await deep.json()) == (
        200,
        {"resource": "/{proxy+}", "path": "/a/b", "stage": "prod"},
    )
    health = await client.get("/prod/health")
    assert (health.status, await health.json()) == (200, {"healthy": True})
    unsigned = await client.get("/prod/health/backend")
    assert unsigned.status == 403  # AWS_IAM: never served open


def test_stage_names_and_http_timeouts_follow_aws_rules(tmp_path: Path) -> None:
    template = json.loads(CDK.read_text())
    resources = template["Resources"]
    resources["EndpointDeploymentStageprodB78BEEA0"]["Properties"]["StageName"] = "not a stage"
    integration = resources["EndpointhealthbackendGETE5F6A7B8"]["Properties"]["Integration"]
    integration["TimeoutInMillis"] = 40_000
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(i.location, i.message) for i in info.value.issues] == [
        (
            "Resources.EndpointhealthbackendGETE5F6A7B8.Properties.Integration.TimeoutInMillis",
            "timeout 40000 ms is outside 50..29000 ms (REST API)",
        ),
        (
            "Resources.Endpoint8024A810",
            "stage name 'not a stage': use letters, digits, '-' and '_' (at most 128)",
        ),
    ]
