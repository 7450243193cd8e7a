"""CloudFormation in a serverless.yml: short-form tags parse everywhere, knowable values resolve."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest

from server.config.cloudformation import UNKNOWN, Evaluator, Stack, function_logical_id
from server.config.load import load_config
from server.config.yamlio import CLOUDFORMATION_TAGS, parse_yaml
from server.ids import new_api_id

TAGS = [
    ("!Ref Table", {"Ref": "Table"}),
    ("!Ref AWS::Region", {"Ref": "AWS::Region"}),
    ("!Condition IsProd", {"Condition": "IsProd"}),
    ("!GetAtt Table.Arn", {"Fn::GetAtt": ["Table", "Arn"]}),
    ("!GetAtt Vpc.Outputs.SubnetId", {"Fn::GetAtt": ["Vpc", "Outputs.SubnetId"]}),  # first dot only
    ("!GetAtt [Table, StreamArn]", {"Fn::GetAtt": ["Table", "StreamArn"]}),
    ("!Sub 'arn:${AWS::Partition}:s3:::${Bucket}/*'", {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}),
    ("!Sub ['${A}-x', {A: !Ref B}]", {"Fn::Sub": ["${A}-x", {"A": {"Ref": "B"}}]}),
    ("!Join ['', [a, !Ref AWS::Region]]", {"Fn::Join": ["", ["a", {"Ref": "AWS::Region"}]]}),
    (
        "!If [IsProd, !Ref X, !Ref AWS::NoValue]",
        {"Fn::If": ["IsProd", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]},
    ),
    ("!Select [0, !GetAZs '']", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}),
    ("!ImportValue shared-vpc", {"Fn::ImportValue": "shared-vpc"}),
    ("!ImportValue {Fn::Sub: '${Env}-vpc'}", {"Fn::ImportValue": {"Fn::Sub": "${Env}-vpc"}}),
    ("!Split [',', 'a,b']", {"Fn::Split": [",", "a,b"]}),
    ("!FindInMap [Map, !Ref AWS::Region, Ami]", {"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "Ami"]}),
    ("!Base64 hello", {"Fn::Base64": "hello"}),
    ("!Cidr [10.0.0.0/16, 4, 8]", {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}),
    ("!Equals [!Ref Stage, prod]", {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}),
    (
        "!And [!Condition A, !Not [!Condition B]]",
        {"Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Condition": "B"}]}]},
    ),
    ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
    (
        "!Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}",
        {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/k"}}},
    ),
]


@pytest.mark.parametrize(("text", "expected"), TAGS)
def test_short_form_tags_load_as_the_long_form(text: str, expected: Any) -> None:
    data, problems = parse_yaml(f"value: {text}\n")
    assert problems == [] and data == {"value": expected}


def test_every_tag_in_every_node_form() -> None:
    for tag, key in CLOUDFORMATION_TAGS.items():
        data, problems = parse_yaml(f"s: !{tag} x\nq: !{tag} [x]\nm: !{tag} {{x: 1}}\n")
        assert problems == [], tag
        assert data["q"] == {key: ["x"]} and data["m"] == {key: {"x": 1}}
        assert data["s"] == {key: ["x"] if tag == "GetAtt" else "x"}


def test_block_style_tags_and_duplicate_keys_still_reported() -> None:
    text = """
    Resource:
      - !Join
        - ':'
        - - arn:aws:s3
          - ''
          - !Ref Bucket
    Sub: !Sub
      - '${Name}-x'
      - Name: a
        Name: b
    """
    data, problems = parse_yaml(textwrap.dedent(text))
    assert data["Resource"] == [{"Fn::Join": [":", ["arn:aws:s3", "", {"Ref": "Bucket"}]]}]
    assert [p.message for p in problems] == ["duplicate key 'Name' (YAML keys must be unique in a mapping)"]


def _stack(resources: dict[str, Any], **kwargs: Any) -> Evaluator:
    def lookup(path: tuple[str, ...]) -> Any:
        value: Any = resources
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    return Evaluator(Stack("eu-west-1", "123456789012", "svc-dev", lookup, **kwargs))


RESOURCES = {
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "todos-dev"}},
        "Generated": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Named": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TableName": {"Fn::Sub": "${AWS::StackName}-t"}},
        },
        "Loop": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Ref": "Loop"}}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "files"}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "events"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "r"}},
    },
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}, "NoDefault": {"Type": "String"}},
    "Mappings": {"Sizes": {"dev": {"Memory": 256}}},
}

EVALUATED = [
    ({"Ref": "AWS::Region"}, "eu-west-1"),
    ({"Ref": "AWS::AccountId"}, "123456789012"),
    ({"Ref": "AWS::StackName"}, "svc-dev"),
    ({"Ref": "AWS::Partition"}, "aws"),
    ({"Ref": "Table"}, "todos-dev"),
    ({"Fn::GetAtt": ["Table", "Arn"]}, "arn:aws:dynamodb:eu-west-1:123456789012:table/todos-dev"),
    ({"Ref": "Named"}, "svc-dev-t"),
    ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::files"),
    ({"Ref": "Queue"}, "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"),
    ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:eu-west-1:123456789012:jobs"),
    ({"Ref": "Topic"}, "arn:aws:sns:eu-west-1:123456789012:events"),
    ({"Ref": "Env"}, "dev"),
    (
        {"Fn::Sub": "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Table}"},
        "arn:aws:dynamodb:eu-west-1:123456789012:table/todos-dev",
    ),
    ({"Fn::Sub": "${Table.Arn}/index/*"}, "arn:aws:dynamodb:eu-west-1:123456789012:table/todos-dev/index/*"),
    ({"Fn::Sub": ["${Name}-${!Literal}", {"Name": {"Ref": "Env"}}]}, "dev-${Literal}"),
    ({"Fn::Join": ["-", ["a", {"Ref": "Env"}, 3]]}, "a-dev-3"),
    ({"Fn::Select": ["1", {"Fn::Split": [",", "a,b,c"]}]}, "b"),
    ({"Fn::Base64": "hi"}, base64.b64encode(b"hi").decode()),
    ({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]}, 256),
    ({"Fn::ToJsonString": {"t": {"Ref": "Table"}}}, '{"t":"todos-dev"}'),
    ({"Fn::Length": [1, 2]}, 2),
    ({"Ref": "HelloLambdaFunction"}, "svc-dev-hello"),
    (
        {"Fn::GetAtt": ["HelloLambdaFunction", "Arn"]},
        "arn:aws:lambda:eu-west-1:123456789012:function:svc-dev-hello",
    ),
    ({"Ref": "WebsocketsApi"}, "abc123defg"),
    ([{"Ref": "Env"}, {"k": {"Ref": "Table"}}], ["dev", {"k": "todos-dev"}]),
]


@pytest.mark.parametrize(("value", "expected"), EVALUATED)
def test_knowable_values_are_evaluated(value: Any, expected: Any) -> None:
    evaluator = _stack(
        RESOURCES, functions={"HelloLambdaFunction": "svc-dev-hello"}, apis={"WebsocketsApi": "abc123defg"}
    )
    assert evaluator.evaluate(value) == expected


UNKNOWABLE = [
    {"Ref": "Generated"},  # CloudFormation would generate the name
    {"Fn::GetAtt": ["Table", "StreamArn"]},
    {"Ref": "Role"},  # a type Portway does not model
    {"Ref": "Missing"},
    {"Ref": "NoDefault"},
    {"Ref": "Loop"},  # names itself: no recursion error, just unknown
    {"Ref": "AWS::NoValue"},
    {"Fn::ImportValue": "shared"},
    {"Fn::If": ["IsProd", "a", "b"]},
    {"Fn::GetAZs": ""},
    {"Fn::Sub": "${Generated}-x"},
    {"Fn::Join": ["", ["a", {"Fn::ImportValue": "x"}]]},
    {"Fn::Select": [5, ["a"]]},
    {"Fn::Transform": {"Name": "x"}},
]


@pytest.mark.parametrize("value", UNKNOWABLE)
def test_unknowable_values_stay_unknown(value: Any) -> None:
    assert _stack(RESOURCES).evaluate(value) is UNKNOWN


def test_function_logical_ids_as_serverless_names_them() -> None:
    assert function_logical_id("hello") == "HelloLambdaFunction"
    assert function_logical_id("get-user_by_id") == "GetDashuserUnderscorebyUnderscoreidLambdaFunction"


# The shape of public Python projects (serverless/examples' DynamoDB services, WebSocket chats):
# CloudFormation in resources, iam and environment, alongside Serverless variables.
PROJECT = """
service: serverless-rest-api-with-dynamodb
frameworkVersion: '3'

provider:
  name: aws
  runtime: python3.9
  region: eu-central-1
  environment:
    DYNAMODB_TABLE: ${self:service}-${sls:stage}
    TABLE_ARN: !GetAtt TodosDynamoDbTable.Arn
    TABLE_FROM_REF: !Ref TodosDynamoDbTable
    REGION: !Ref AWS::Region
    WEBSOCKET_API_ID: !Ref WebsocketsApi
    WEBSOCKET_URL: ${self:custom.websocketUrl}
    QUEUE_URL: !Ref JobsQueue
    PUBLIC_KEY: ${file(./public_key)}
    STREAM: !GetAtt TodosDynamoDbTable.StreamArn
    ACCOUNT: !Sub '${AWS::AccountId}'
    BUCKET_ARN: !Join ['', ['arn:aws:s3:::', !Ref Uploads, '/*']]
    GENERATED: !Ref Generated
    LOCKED: !Ref Locked
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [dynamodb:Query, dynamodb:GetItem, dynamodb:PutItem]
          Resource:
            - !GetAtt TodosDynamoDbTable.Arn
            - !Sub '${TodosDynamoDbTable.Arn}/index/*'
            - !Join ['/', [!GetAtt TodosDynamoDbTable.Arn, index, '*']]
        - Effect: Allow
          Action: [execute-api:ManageConnections]
          Resource: !Sub 'arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketsApi}/*'
        - Effect: Allow
          Action: [ssm:GetParameter]
          Resource: !If [IsProd, !ImportValue prod-param, !Ref AWS::NoValue]

custom:
  websocketUrl: !Join
    - ''
    - ['https://', !Ref WebsocketsApi, '.execute-api.', !Ref AWS::Region, '.amazonaws.com/', '${sls:stage}']

functions:
  create:
    handler: todos/create.create
    environment:
      ONLY_HERE: !Sub '${self:service}-${AWS::Region}-${Uploads}'
    events:
      - http: {path: todos, method: post, cors: true}
  list:
    handler: todos/list.list
    events:
      - http: {path: todos, method: get, cors: true}
  connect:
    handler: chat.connect
    environment:
      SELF: !GetAtt ConnectLambdaFunction.Arn
    events:
      - websocket: $connect

resources:
  Conditions:
    IsProd: !Equals [!Ref 'AWS::StackName', prod]
  Resources:
    TodosDynamoDbTable:
      Type: 'AWS::DynamoDB::Table'
      DeletionPolicy: Retain
      Properties:
        AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
        KeySchema: [{AttributeName: id, KeyType: HASH}]
        BillingMode: PAY_PER_REQUEST
        TableName: ${self:provider.environment.DYNAMODB_TABLE}
        StreamSpecification: {StreamViewType: NEW_IMAGE}
    JobsQueue:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: !Sub '${AWS::StackName}-jobs'
        RedrivePolicy:
          deadLetterTargetArn: !GetAtt DeadLetters.Arn
          maxReceiveCount: 3
    DeadLetters:
      Type: AWS::SQS::Queue
    Uploads:
      Type: AWS::S3::Bucket
      Properties:
        BucketName: ${self:service}-${sls:stage}-uploads
        Tags: [{Key: secret, Value: '${ssm:/never/resolved}'}]
    Locked:
      Type: AWS::DynamoDB::Table
      Properties: {TableName: '${ssm:/tables/locked}'}
    Generated:
      Type: AWS::DynamoDB::Table
      Properties:
        KeySchema: !If [IsProd, [], !Ref AWS::NoValue]
  Outputs:
    TableArn:
      Value: !GetAtt TodosDynamoDbTable.Arn
      Export:
        Name: !Sub '${AWS::StackName}-TableArn'
"""


def test_a_project_with_cloudformation_everywhere_loads(tmp_path: Path) -> None:
    (tmp_path / "todos").mkdir()
    for name in ("create", "list"):
        (tmp_path / "todos" / f"{name}.py").write_text(f"def {name}(event, context):\n    return {{}}\n")
    (tmp_path / "chat.py").write_text("def connect(event, context):\n    return {}\n")
    (tmp_path / "public_key").write_text("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")
    path = tmp_path / "serverless.yml"
    path.write_text(PROJECT)
    config = load_config(path, env={})
    rest, websocket = config.apis
    environment = dict(rest.routes[0].integration.environment)
    table = "serverless-rest-api-with-dynamodb-dev"
    aws_url = f"https://{websocket.id}.execute-api.eu-central-1.amazonaws.com/dev"
    assert environment == {
        "DYNAMODB_TABLE": table,
        "TABLE_ARN": f"arn:aws:dynamodb:eu-central-1:123456789012:table/{table}",
        "TABLE_FROM_REF": table,
        "REGION": "eu-central-1",
        "WEBSOCKET_API_ID": websocket.id,
        "WEBSOCKET_URL": aws_url,
        "QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/123456789012/serverless-rest-api-with-dynamodb-dev-jobs",
        "PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
        "ACCOUNT": "123456789012",
        "BUCKET_ARN": f"arn:aws:s3:::{table}-uploads/*",
        "ONLY_HERE": f"serverless-rest-api-with-dynamodb-eu-central-1-{table}-uploads",
    }
    assert websocket.id == new_api_id("dev-serverless-rest-api-with-dynamodb-websockets")
    connect = websocket.routes[0].integration.environment
    assert connect["SELF"] == (
        "arn:aws:lambda:eu-central-1:123456789012:function:serverless-rest-api-with-dynamodb-dev-connect"
    )
    # Only what Portway needs and cannot know is reported; resources and iam stay silent.
    assert config.warnings == (
        f"provider.environment.WEBSOCKET_URL: {aws_url!r} is this API's endpoint on AWS: a handler calling "
        "it reaches AWS, not Portway (build the URL from the event's requestContext.domainName and stage "
        "instead)",
        "provider.environment.STREAM: CloudFormation values cannot be resolved locally (left out)",
        "provider.environment.GENERATED: CloudFormation values cannot be resolved locally (left out)",
        # A variable Portway cannot resolve inside `resources` makes the value unknown, not an error.
        "provider.environment.LOCKED: CloudFormation values cannot be resolved locally (left out)",
    )


def test_pseudo_parameters_in_plain_strings_stay_text(tmp_path: Path) -> None:
    """`${AWS::Region}` is CloudFormation's placeholder, not a Serverless variable (Serverless >= 2.3)."""
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    path = tmp_path / "serverless.yml"
    path.write_text(
        textwrap.dedent(
            """
            service: svc
            provider:
              name: aws
              environment:
                LITERAL: 'arn:aws:sns:${AWS::Region}:${aws:accountId}:t'
            functions:
              f: {handler: handler.f, events: [{httpApi: 'GET /'}]}
            """
        )
    )
    config = load_config(path, env={})
    assert (
        config.apis[0].routes[0].integration.environment["LITERAL"]
        == "arn:aws:sns:${AWS::Region}:123456789012:t"
    )
