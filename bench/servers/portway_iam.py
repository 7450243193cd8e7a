"""Portway for the SigV4 benchmark (``bench/bench_sigv4.py``): the same MOCK route with and without
``aws_iam``, served like ``portway_server.py`` (uvloop, no access log).

    python bench/servers/portway_iam.py --port 8090

REST API ``iambench01``, stage ``dev``:

* ``GET /dev/open`` -> MOCK 200 ``{"ok":true}``, no authorization;
* ``GET /dev/iam``  -> the same MOCK, ``authorizer: aws_iam``; access key :data:`KEY_ID` /
  :data:`SECRET` with a policy allowing ``execute-api:Invoke`` on the API.

The account bucket is off, so neither route touches the store: the difference between the two is
the authorize phase (SigV4 verification, policy evaluation, identity fields).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from portway_server import serve  # noqa: E402

from server.auth.policy import parse_policy  # noqa: E402
from server.config.model import (  # noqa: E402
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    IamCredentialConfig,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    StageConfig,
)

KEY_ID = "AKIAPORTWAYBENCH0001"
SECRET = "bench/secret/0123456789abcdefghijklmnopqrs"


def iam_config() -> GatewayConfig:
    mock = IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='{"ok":true}'))
    iam = AuthorizerConfig("aws_iam", AuthorizerType.AWS_IAM)
    api = ApiConfig(
        name="iambench",
        id="iambench01",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(
            RouteConfig(method="GET", path="/open", integration=mock),
            RouteConfig(method="GET", path="/iam", integration=mock, authorizer=iam),
        ),
    )
    policy = parse_policy(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "execute-api:Invoke",
                    "Resource": "arn:aws:execute-api:*:*:iambench01/*",
                }
            ]
        }
    )
    return GatewayConfig(
        apis=(api,),
        account_throttle=None,
        iam_credentials=(IamCredentialConfig(KEY_ID, policy, secret_access_key=SECRET, user="bench"),),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portway with an open and an aws_iam MOCK route")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, iam_config()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
