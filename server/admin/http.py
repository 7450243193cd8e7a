"""The admin API's aiohttp adapter: authenticate, route, run, render AWS's JSON and errors.

Errors are AWS control-plane errors: the status, ``x-amzn-ErrorType: <Type>`` and
``{"message": ...}``, so boto3 raises ``client.exceptions.NotFoundException`` and so on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from server.admin.auth import AdminCredentials, authenticate
from server.admin.paths import is_admin_path, match, parse_query
from server.admin.service import AdminError, AdminService
from server.config.model import ApiKind, GatewayConfig
from server.ids import new_request_uuid
from server.keys.registry import KeyRegistry
from server.store.base import Store

__all__ = ["ADMIN", "AdminApi", "is_admin_path"]

log = logging.getLogger("portway.admin")


def _response(status: int, body: Mapping[str, Any] | None, error_type: str | None = None) -> web.Response:
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": new_request_uuid()}
    if error_type is not None:
        headers["x-amzn-ErrorType"] = error_type
    return web.Response(status=status, body=b"" if body is None else orjson.dumps(body), headers=headers)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return _response(status, {"message": message}, error_type)


class AdminApi:
    """The admin API of one gateway process (credentials read once, at start-up)."""

    def __init__(
        self,
        credentials: AdminCredentials,
        websocket_apis: frozenset[str] = frozenset(),
        rest_stages: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.credentials = credentials
        self._websocket_apis = websocket_apis
        self._rest_stages = rest_stages  # (api id, stage) pairs FlushStageCache accepts

    @classmethod
    def from_env(cls, config: GatewayConfig, environ: Mapping[str, str] | None = None) -> AdminApi:
        credentials = AdminCredentials.from_env(os.environ if environ is None else environ, config.region)
        if not credentials.enabled:
            log.info(
                "admin API disabled: set PORTWAY_ADMIN_TOKEN and/or PORTWAY_ADMIN_ACCESS_KEY_ID with "
                "PORTWAY_ADMIN_SECRET_ACCESS_KEY to enable /@admin"
            )
        else:
            modes = [m for m, on in (("SigV4", credentials.sigv4), ("bearer token", credentials.token)) if on]
            log.info("admin API enabled at /@admin (%s)", ", ".join(modes))
        websocket_apis = frozenset(api.id for api in config.apis if api.kind is ApiKind.WEBSOCKET)
        rest_stages = frozenset(
            (api.id, stage.name) for api in config.apis if api.kind is ApiKind.REST for stage in api.stages
        )
        return cls(credentials, websocket_apis, rest_stages)

    async def handle(self, request: web.Request, registry: KeyRegistry, store: Store) -> web.Response:
        body = await request.read()
        raw_path, _, query = request.raw_path.partition("?")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        host = request.headers.get("Host", request.host)
        failure = authenticate(
            self.credentials,
            method=request.method,
            url=f"{request.scheme}://{host}{request.raw_path}",
            headers=headers,
            body=body,
        )
        if failure is not None:
            return _error(403, failure.error_type, failure.message)
        params = parse_query(query)
        operation = match(request.method, raw_path, params)
        if operation is None:
            return _error(404, "NotFoundException", f"No admin operation for {request.method} {raw_path}")
        service = AdminService(registry, store, self._websocket_apis, self._rest_stages)
        try:
            reply = await service.run(operation, params, body)
        except AdminError as exc:
            return _error(exc.status, exc.error_type, exc.message)
        except Exception:
            log.exception("admin %s failed", operation.name)
            return _error(500, "InternalServerErrorException", "Internal server error")
        return _response(reply.status, reply.body)


ADMIN = web.AppKey("admin", AdminApi)
