"""``portway serve`` with cluster timings, for native configs that cannot carry a ``cluster:`` section.

    python -m tests.cluster.launcher --cluster '{"heartbeat_s": 0.2, ...}' serve CONFIG --port 0 ...

Loads the definition exactly like ``portway serve`` (it *is* ``server.cli.main``), with
:class:`~server.config.model.ClusterSettings` replaced by the given values. tests/cluster/conftest.py
uses it only while the native loader does not accept ``cluster:``; once it does, the nodes run
``python -m server serve`` with the section in the YAML.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from server import cli
from server.config.model import ClusterSettings, GatewayConfig


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if len(args) < 2 or args[0] != "--cluster":
        print("usage: launcher --cluster JSON serve CONFIG [serve options]", file=sys.stderr)
        return 2
    settings = ClusterSettings(**json.loads(args[1]))
    load = cli.load_config

    def load_with_cluster(
        path: Path, *, stage: str | None = None, env: Mapping[str, str] | None = None
    ) -> GatewayConfig:
        return dataclasses.replace(load(path, stage=stage, env=env), cluster=settings)

    cli.load_config = load_with_cluster  # what `portway serve` calls to read CONFIG
    return cli.main(args[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
