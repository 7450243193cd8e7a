"""Usage plans and API keys declared in templates are enforced: CloudFormation's UsagePlan, ApiKey
and UsagePlanKey resources (end to end), and SAM's ``Auth.UsagePlan``."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.load import load_config
from server.config.model import QuotaSettings, ThrottleSettings

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
KEY = "cfnKey0123456789abcdefghij"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: keyed}
  Items:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: items}
  ItemsGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Items
      HttpMethod: GET
      AuthorizationType: NONE
      ApiKeyRequired: true
      Integration:
        Type: MOCK
        RequestTemplates: {application/json: '{"statusCode": 200}'}
        IntegrationResponses:
          - StatusCode: "200"
            ResponseTemplates: {application/json: '{"items": []}'}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {RestApiId: !Ref Api}
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties: {RestApiId: !Ref Api, DeploymentId: !Ref Deployment, StageName: live}
  Plan:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      UsagePlanName: basic
      ApiStages: [{ApiId: !Ref Api, Stage: !Ref Stage}]
      Quota: {Limit: 2, Period: DAY}
      Throttle: {RateLimit: 100, BurstLimit: 50}
  Key:
    Type: AWS::ApiGateway::ApiKey
    Properties: {Name: client, Enabled: true, Value: KEY}
  PlanKey:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {KeyId: !Ref Key, KeyType: API_KEY, UsagePlanId: !Ref Plan}
"""


async def test_cloudformation_plan_and_key_are_enforced(tmp_path: Path, aiohttp_client: Client) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("KEY", KEY))
    config = load_config(path)
    assert config.warnings == ()
    (plan,) = config.usage_plans
    assert (plan.id, plan.name, plan.quota, plan.throttle) == (
        "Plan",
        "basic",
        QuotaSettings(2, "DAY", 0),
        ThrottleSettings(100.0, 50),
    )
    assert [(s.api_id, s.stage) for s in plan.stages] == [(config.apis[0].id, "live")]
    (key,) = config.api_keys
    assert (key.name, key.value, key.plans) == ("client", KEY, ("Plan",))
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/live/items")).status == 403
    for _ in range(2):
        answer = await client.get("/live/items", headers={"x-api-key": KEY})
        assert (answer.status, await answer.json()) == (200, {"items": []})
    over = await client.get("/live/items", headers={"x-api-key": KEY})
    assert (over.status, await over.json()) == (429, {"message": "Limit Exceeded"})


def test_sam_per_api_usage_plan_gets_a_plan_and_a_generated_key(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Api:
                Type: AWS::Serverless::Api
                Properties:
                  StageName: dev
                  Auth:
                    ApiKeyRequired: true
                    UsagePlan:
                      CreateUsagePlan: PER_API
                      Quota: {Limit: 100, Period: MONTH}
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: .
                  Handler: app.handler
                  Events:
                    Get:
                      Type: Api
                      Properties: {RestApiId: !Ref Api, Path: /x, Method: get}
            """
        )
    )
    config = load_config(tmp_path / "template.yaml")
    (plan,) = config.usage_plans
    assert (plan.id, plan.quota, [s.stage for s in plan.stages]) == (
        "ApiUsagePlan",
        QuotaSettings(100, "MONTH", 0),
        ["dev"],
    )
    (key,) = config.api_keys
    assert (key.name, key.value, key.plans) == ("ApiApiKey", None, ("ApiUsagePlan",))
    assert config.apis[0].routes[0].api_key_required
