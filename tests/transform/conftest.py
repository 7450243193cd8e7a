"""The WebSocket gateway fixture of the connection tests, for the route-model tests."""

from tests.connections.conftest import ws_gateway

__all__ = ["ws_gateway"]
