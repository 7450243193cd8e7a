"""Portway under the WebSocket echo benchmark with per-message throttling on or off (issue #5).

    python bench/servers/portway_ws_throttle.py --port 8091 --throttle off|on [--redis-url URL]
    .venv/bin/python bench/bench_ws.py --figures a \\
        --portway-launcher bench/servers/portway_ws_throttle.py --portway-arg=--throttle=on

The API of ``portway_ws.py`` (one ``$default`` route with a route response to the in-process echo
handler), with:

* ``--throttle off``: the account bucket off (``account_throttle=None``) and no stage throttle, so
  no level applies to a message and the gateway makes no store call: the cost before per-message
  throttling existed;
* ``--throttle on``: a stage throttle (the ``$default`` route's own bucket) and the account bucket,
  both far above what one process reaches (rate and burst 1e9), so nothing is refused but every
  message costs one ``Store.admit`` of two buckets (one ``EVALSHA`` on Redis, pipelined with the
  other decisions of the same loop iteration).

``--redis-url`` keeps the store in Redis instead of the embedded store.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "bench" / "servers"):  # run as a script: the repository and portway_ws
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from portway_ws import serve, ws_bench_config  # noqa: E402

from server.config.model import GatewayConfig, ThrottleSettings  # noqa: E402

HIGH = ThrottleSettings(1e9, 10**9)


def throttle_config(throttle: str) -> GatewayConfig:
    config = ws_bench_config()
    if throttle == "off":
        return dataclasses.replace(config, account_throttle=None)
    api = config.apis[0]
    stages = tuple(dataclasses.replace(stage, throttle=HIGH) for stage in api.stages)
    api = dataclasses.replace(api, stages=stages)
    return dataclasses.replace(config, apis=(api,), account_throttle=HIGH)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portway with the WebSocket benchmark's API, throttled")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--throttle", choices=("off", "on"), default="on")
    parser.add_argument("--redis-url", help="store in this Redis instead of the embedded store")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, throttle_config(args.throttle), args.redis_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
