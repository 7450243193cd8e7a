"""WebSocket lifecycle, connection registry, the @connections API, cross-node delivery."""
