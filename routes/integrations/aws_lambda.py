"""A real Lambda function as a :class:`~routes.integrations.base.LambdaInvoker` (AWS_PROXY).

``Invoke`` with ``RequestResponse`` through a shared aiobotocore client; the proxy event and the
response rules are :class:`~routes.integrations.lambda_proxy.LambdaProxyIntegration`'s, exactly
as for Python handlers. Lambda's answers map onto the invoker contract:

* ``X-Amz-Function-Error`` (``FunctionError`` in the SDK's result) -> :class:`FunctionError` with
  the payload's ``errorType``/``errorMessage``;
* ``TooManyRequestsException`` -> :class:`ConcurrencyLimitExceeded`;
* any other service error (``ResourceNotFoundException``, access denied, ...) or a connection
  failure -> :class:`InvokeFailure`;
* the integration timeout -> ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from routes.integrations.aws_clients import ClientKey, default_endpoint
from routes.integrations.base import ConcurrencyLimitExceeded, FunctionError, InvokeFailure
from server.config.model import GatewayConfig, IntegrationConfig

__all__ = ["LambdaTarget", "lambda_client_key", "lambda_target"]


class LambdaTarget:
    """Where a function lives: its name or ARN, and the region and endpoint of its client."""

    def __init__(self, function: str, region: str, endpoint_url: str | None) -> None:
        self.function = function
        self.region = region
        self.endpoint_url = endpoint_url


def lambda_target(config: IntegrationConfig, gateway: GatewayConfig) -> LambdaTarget:
    """An ARN names its region (``arn:aws:lambda:REGION:ACCOUNT:function:NAME``); otherwise the
    integration's ``region``, else the gateway's. The endpoint: the integration's, else the
    config's ``aws.endpointUrl``, else ``PORTWAY_AWS_ENDPOINT_URL``, else AWS's own."""
    function = config.uri or config.function_name
    parts = function.split(":")
    region = config.aws_region or gateway.region
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "lambda" and parts[3]:
        region = parts[3]
    endpoint = config.aws_endpoint_url or gateway.aws_endpoint_url or default_endpoint()
    return LambdaTarget(function, region, endpoint)


def lambda_client_key(target: LambdaTarget) -> ClientKey:
    return ("lambda", target.region, target.endpoint_url)


class AwsLambdaInvoker:
    def __init__(self, client: Any, function: str) -> None:
        self._client = client
        self._function = function

    async def invoke_event(self, event: dict[str, Any], *, request_id: str, timeout_s: float) -> Any:
        payload = json.dumps(event, separators=(",", ":")).encode("utf-8")
        async with asyncio.timeout(timeout_s):
            try:
                response = await self._client.invoke(
                    FunctionName=self._function, InvocationType="RequestResponse", Payload=payload
                )
                body: bytes = await response["Payload"].read()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "TooManyRequestsException":
                    raise ConcurrencyLimitExceeded(f"{self._function}: {code}") from exc
                raise InvokeFailure(f"{self._function}: {code or 'error'}: {exc}") from exc
            except BotoCoreError as exc:  # endpoint unreachable, credentials missing, ...
                raise InvokeFailure(f"{self._function}: {exc}") from exc
        if response.get("FunctionError"):
            error = _json_or_none(body)
            if not isinstance(error, dict):
                error = {}
            raise FunctionError(
                str(error.get("errorType") or response["FunctionError"]),
                str(error.get("errorMessage") or ""),
                [str(line) for line in error.get("stackTrace") or [] if isinstance(line, str)],
            )
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvokeFailure(f"{self._function}: the function returned invalid JSON") from exc

    async def close(self) -> None:
        # The client is shared (AwsClients) and closed with the app.
        return None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
