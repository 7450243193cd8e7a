"""MOCK integration: a fixed status, headers and body per method, no backend."""

from __future__ import annotations

from server.config.model import MockResponse
from server.events import RequestInfo
from server.messages import HttpResponse

__all__ = ["MockIntegration"]


class MockIntegration:
    def __init__(self, mock: MockResponse) -> None:
        self._status = mock.status
        self._headers = list(mock.headers.items())
        self._body = mock.body.encode("utf-8")

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        response = HttpResponse(self._status, list(self._headers), self._body)
        response.set_default_header("Content-Type", "application/json")
        return response

    async def close(self) -> None:
        return None
