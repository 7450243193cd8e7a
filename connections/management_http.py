"""The ``@connections`` HTTP API, wire-compatible with boto3's ``apigatewaymanagementapi``.

Paths (``@`` may be sent as ``%40``; ids are URL-decoded, so ``%3D`` is ``=``)::

    POST   /{stage}/@connections/{id}                 PostToConnection: body -> one text frame
    GET    /{stage}/@connections/{id}                 GetConnection
    DELETE /{stage}/@connections/{id}                 DeleteConnection (204)

Beyond AWS (users asked every peer for these)::

    POST|DELETE /{stage}/@connections/{id}/channels/{channel}   join / leave a channel
    POST   /{stage}/@channels/{channel}               post once to every member, on every node
    POST   /{stage}/@broadcast                        post once to every connection of the stage
    GET    /{stage}/@connections[?channel=c]          {"connections": [ids], "count": n}
    DELETE /{stage}/@connections?channel=c            bulk disconnect (all of the stage without c)

Errors carry ``x-amzn-ErrorType`` (botocore maps it to ``client.exceptions.GoneException`` etc.).

Access (docs/security.md): the caller's address must be in ``management.allowNetworks``
(loopback only by default: behind a reverse proxy every client would otherwise look local or
private), else 403 ``ForbiddenException``; without signatures, a request relayed by a proxy
(``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) is refused too, since a proxy on the same host
makes every client's address loopback. With ``management.auth: iam`` (the default once access
keys are configured, and required for any network wider than loopback) every request must also
carry a valid SigV4 signature (service ``execute-api``, the gateway's region) by a key whose policy
allows ``execute-api:ManageConnections`` on
``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/@connections/{id}`` (the
extensions: ``.../{METHOD}/@channels/{channel}``, ``.../POST/@broadcast``,
``.../{METHOD}/@connections/{id}/channels/{channel}``), as boto3 and the AWS SDKs sign it. A missing
or bad signature gets AWS's 403 bodies (``MissingAuthenticationTokenException``,
``InvalidSignatureException``, ``IncompleteSignatureException``, ``UnrecognizedClientException``); a
key whose policy does not allow it, 403 ``ForbiddenException``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

from connections.management import ConnectionManager
from routes.dispatch import Dispatch
from server.auth.iam import MANAGE_CONNECTIONS, IamKeyring, authorize_iam
from server.config.model import LOOPBACK_NETWORKS, GatewayConfig
from server.errors import (
    AccessDenied,
    ForbiddenException,
    GatewayError,
    GoneException,
    LimitExceededException,
    PayloadTooLargeException,
    ServerError,
)
from server.ids import new_request_uuid
from server.messages import HttpRequest, HttpResponse
from server.render import render_error
from server.store.base import StoreUnavailable

__all__ = [
    "ManagementAccess",
    "ManagementPath",
    "caller_allowed",
    "handle_management",
    "parse_management_path",
]

log = logging.getLogger("portway.connections")

_PATH = re.compile(
    r"^(?P<prefix>/.*?)/(?:@|%40)(?P<kind>connections|channels|broadcast)(?P<rest>/.*)?$", re.I
)
_ERRORS: dict[int, type[GatewayError]] = {
    410: GoneException,
    413: PayloadTooLargeException,
    429: LimitExceededException,
    403: ForbiddenException,
}


_DEFAULT_NETWORKS = ",".join(LOOPBACK_NETWORKS)
_FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host")


@functools.lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip())


def caller_allowed(remote: str | None, spec: str | None = None) -> bool:
    """Whether a peer address is inside ``spec`` (comma-separated CIDRs; default loopback)."""
    if not remote:
        return False
    return _allowed(remote, spec or _DEFAULT_NETWORKS)


@dataclass(frozen=True, slots=True)
class ManagementAccess:
    """Who may call the management endpoints: the networks, and the SigV4 keys when ``auth: iam``
    (``keyring`` None: the network alone decides, which the loaders allow for loopback only)."""

    networks: str = _DEFAULT_NETWORKS
    keyring: IamKeyring | None = None
    region: str = "us-east-1"
    account_id: str = "123456789012"

    @classmethod
    def from_config(cls, config: GatewayConfig, keyring: IamKeyring) -> ManagementAccess:
        settings = config.management
        return cls(
            networks=",".join(settings.allow_networks),
            keyring=keyring if settings.auth == "iam" else None,
            region=config.region,
            account_id=config.account_id,
        )

    def network_allows(self, remote: str | None, headers: Mapping[str, str] | None = None) -> bool:
        """The peer is inside the networks, and (without signatures) the request was not relayed
        by a proxy: a reverse proxy on the same host makes every client's peer address loopback,
        so a request carrying a forwarding header is not taken for a local caller."""
        if not caller_allowed(remote, self.networks):
            return False
        if self.keyring is None and headers is not None:
            return not any(name in headers for name in _FORWARDING_HEADERS)
        return True


@functools.lru_cache(maxsize=4096)
def _allowed(remote: str, spec: str) -> bool:
    # Cached per (address, networks): parsing an address with ipaddress costs several us, and the
    # same few backends call @connections at high rates.
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(spec))


@dataclass(frozen=True, slots=True)
class ManagementPath:
    prefix: str  # "/{stage}" (plus base path)
    kind: str  # connections | channels | broadcast
    parts: tuple[str, ...]  # decoded segments after the kind


def parse_management_path(raw_path: str) -> ManagementPath | None:
    m = _PATH.match(raw_path)
    if m is None:
        return None
    rest = m.group("rest") or ""
    parts = tuple(unquote(p) for p in rest.split("/")[1:] if p)
    return ManagementPath(m.group("prefix"), m.group("kind").lower(), parts)


def _json(status: int, payload: object | None = None) -> HttpResponse:
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json")] if payload is not None else []
    return HttpResponse(status, headers, body)


async def handle_management(
    request: web.Request,
    path: ManagementPath,
    dispatch: Dispatch,
    manager: ConnectionManager,
    access: ManagementAccess | None = None,
) -> web.Response:
    access = access or ManagementAccess()
    try:
        if not access.network_allows(request.remote, request.headers):
            raise ForbiddenException()
        if access.keyring is not None:
            await _check_signature(request, path, dispatch, access, access.keyring)
        response = await _operate(request, path, dispatch, manager)
    except GatewayError as error:
        response = render_error(error)
    except StoreUnavailable as exc:
        # Redis down: the owner of a socket held elsewhere cannot be looked up. A 500, not an
        # unhandled exception (sockets held by this node are still served: they are found first).
        log.warning("%s %s: %s", request.method, request.path, exc)
        response = render_error(ServerError())
    response.headers.append(("x-amzn-RequestId", new_request_uuid()))
    return web.Response(status=response.status, body=response.body, headers=CIMultiDict(response.headers))


async def _check_signature(
    request: web.Request,
    path: ManagementPath,
    dispatch: Dispatch,
    access: ManagementAccess,
    keyring: IamKeyring,
) -> None:
    """SigV4 plus ``execute-api:ManageConnections`` on this operation's ARN (module docstring)."""
    if (
        request.content_length is not None
        and request.content_length > dispatch.api.websocket.max_message_bytes
    ):
        raise PayloadTooLargeException()  # not read (or hashed) at all
    body = await request.read()  # the payload hash is signed; aiohttp keeps it for _operate
    raw_path, _, query = request.raw_path.partition("?")
    signed = HttpRequest(
        method=request.method,
        raw_path=raw_path,
        query_string=query,
        headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
        body=body,
        source_ip=request.remote or "",
        host=request.host,
        scheme=request.scheme,
    )
    tail = "/".join((f"@{path.kind}", *path.parts))
    resource = (
        f"arn:aws:execute-api:{access.region}:{access.account_id}:{dispatch.api.id}/"
        f"{dispatch.stage.name}/{request.method}/{tail}"
    )
    try:
        authorize_iam(
            keyring,
            signed,
            region=access.region,
            action=MANAGE_CONNECTIONS,
            resource=resource,
            now=time.time(),
        )
    except AccessDenied as denied:
        # The management API's own 403 (ApiGatewayManagementApi ForbiddenException, §1.7).
        raise ForbiddenException(denied.message) from None


def _check(status: int) -> None:
    if status in _ERRORS:
        raise _ERRORS[status]()
    if status >= 500:
        raise ServerError()


async def _operate(
    request: web.Request, path: ManagementPath, dispatch: Dispatch, manager: ConnectionManager
) -> HttpResponse:
    api, stage, method = dispatch.api, dispatch.stage.name, request.method
    limit = api.websocket.max_message_bytes
    if path.kind in ("channels", "broadcast"):
        if method != "POST" or (path.kind == "channels") != (len(path.parts) == 1):
            raise ForbiddenException()
        data = await _body(request, limit)
        channel = path.parts[0] if path.kind == "channels" else None
        return _json(200, {"delivered": await manager.publish(api.id, stage, channel, data)})

    if not path.parts:  # the collection: list or bulk-disconnect
        channel = request.query.get("channel")
        ids = await manager.list_ids(api.id, stage, channel)
        if method == "GET":
            return _json(200, {"connections": ids, "count": len(ids)})
        if method == "DELETE":
            results = await asyncio.gather(*(manager.delete(i) for i in ids))
            return _json(200, {"disconnected": sum(1 for r in results if r == 204)})
        raise ForbiddenException()

    connection_id = path.parts[0]
    if len(path.parts) == 3 and path.parts[1] == "channels":
        if method not in ("POST", "DELETE"):
            raise ForbiddenException()
        op = manager.join if method == "POST" else manager.leave
        _check(await op(connection_id, path.parts[2]))
        return _json(200, {})
    if len(path.parts) != 1:
        raise ForbiddenException()
    if method == "POST":
        data = await _body(request, limit)
        _check(await manager.post(connection_id, data))
        return HttpResponse(200, [], b"")
    if method == "GET":
        status, info = await manager.get(connection_id)
        _check(status)
        return _json(200, info)
    if method == "DELETE":
        _check(await manager.delete(connection_id))
        return HttpResponse(204, [], b"")
    raise ForbiddenException()


async def _body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeException(f"Message size exceeds the limit of {limit} bytes")
    data = await request.read()
    if len(data) > limit:
        raise PayloadTooLargeException(f"Message size exceeds the limit of {limit} bytes")
    return data
