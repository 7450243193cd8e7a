"""A local OpenID issuer for the JWT/Cognito tests: an aiohttp server on port 0 serving the
discovery document (``/.well-known/openid-configuration``), the JWKS it names (``/jwks``) and
Cognito's fixed JWKS path (``/.well-known/jwks.json``), plus token minting with its RSA keys.

Tests rotate keys (:meth:`Issuer.rotate`), make the endpoints fail (``fail``) and count the
requests each path received (``hits``)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "portway-client"


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One 2048-bit key per name for the whole session (generating one costs ~50 ms)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(kid: str, key: rsa.RSAPrivateKey, **extra: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", **extra}


class Issuer:
    def __init__(self) -> None:
        self.server: TestServer | None = None
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa_key("k1")}
        self.published: list[str] = ["k1"]
        self.hits: dict[str, int] = {}
        self.fail = False

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def rotate(self, kid: str) -> None:
        """Sign with a new key from now on, publishing it beside the old ones."""
        self.keys[kid] = rsa_key(kid)
        self.published.append(kid)

    def token(
        self,
        *,
        kid: str = "k1",
        algorithm: str = "RS256",
        key: Any = None,
        headers: dict[str, Any] | None = None,
        lifetime: float = 300,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + lifetime,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not _DROP}
        signing_key = key if key is not None else self.keys[kid]
        return jwt.encode(body, signing_key, algorithm=algorithm, headers={"kid": kid, **(headers or {})})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if self.fail:
            return web.Response(status=503)
        return web.json_response({"keys": [public_jwk(kid, self.keys[kid]) for kid in self.published]})

    async def _discovery(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if self.fail:
            return web.Response(status=503)
        return web.json_response({"issuer": self.url, "jwks_uri": self.url + "/jwks"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


class _Drop:
    """A claim value meaning "leave this claim out"."""


_DROP: Any = _Drop()
DROP: Any = _DROP


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    served = Issuer()
    await served.start()
    yield served
    await served.close()
