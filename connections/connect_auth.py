"""The WebSocket ``$connect`` authorize hook (reference §1.4, §1.8): whatever
:class:`~server.auth.base.Authorizer` the factory built for the ``$connect`` route (Lambda
``REQUEST``, IAM, JWT...) is asked once per connection, before the handshake completes.

The upgrade request is given to it in the shape every authorizer takes: a
:class:`~server.events.RequestInfo` (route key ``$connect``) inside an
:class:`~server.auth.base.AuthRequest` with the method ARN
``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`` and the new connection's id.
A refusal is raised as a leaf of the error tree (401, 403, 500) and becomes the handshake status;
an allowed caller's ``authorizer`` and ``identity`` are kept with the connection and appear in
every later event of it.
"""

from __future__ import annotations

from aiohttp import web

from routes.dispatch import Dispatch
from server.auth.base import Authorizer, AuthRequest, AuthResult, method_arn
from server.config.model import ApiKind
from server.events import RequestInfo
from server.messages import HttpRequest

__all__ = ["authorize_connect"]

ROUTE_KEY = "$connect"


async def authorize_connect(
    authorizer: Authorizer,
    request: web.Request,
    dispatch: Dispatch,
    *,
    connection_id: str,
    request_id: str,
    now_ms: int,
    region: str,
    account_id: str,
) -> AuthResult:
    """Ask ``authorizer`` about this upgrade request; raises the refusal (a GatewayError)."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    path, _, query = request.raw_path.partition("?")
    http_request = HttpRequest(
        method=request.method,
        raw_path=path,
        query_string=query,
        headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
        body=b"",
        source_ip=peer[0] if peer else "",
        host=request.host,
        scheme=request.scheme,
        protocol=f"HTTP/{request.version.major}.{request.version.minor}",
    )
    api, stage = dispatch.api, dispatch.stage
    info = RequestInfo(
        request=http_request,
        api_id=api.id,
        account_id=account_id,
        stage=stage.name,
        stage_prefix=dispatch.stage_prefix,
        path=dispatch.path,
        resource=ROUTE_KEY,
        route_key=ROUTE_KEY,
        path_parameters={},
        stage_variables=stage.variables,
        request_id=request_id,
        extended_request_id=request_id,
        now_ms=now_ms,
    )
    return await authorizer.authorize(
        AuthRequest(
            info=info,
            kind=ApiKind.WEBSOCKET,
            method_arn=method_arn(region, account_id, api.id, stage.name, "", ROUTE_KEY),
            region=region,
            source_ip=http_request.source_ip,
            connection_id=connection_id,
        )
    )
