"""Every recorded AWS case in cases/*.json, replayed against a real Portway (harness.py says how).

The gateway is the one ``portway serve`` runs (GatewayRunner on port 0) with portway.yaml, which
rebuilds the APIs the recordings were made with.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.config.load import load_config
from server.config.model import GatewayConfig, frozen_map
from tests.conformance.backend import recorded_backend
from tests.conformance.harness import Case, differences, load_cases, send
from tests.server.live import live_gateway

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CASES = load_cases()
HTTP_CASES = [case for case in CASES if case.runner == "http"]


@pytest.fixture(scope="module")
def config() -> GatewayConfig:
    return load_config(HERE / "portway.yaml")


def with_backend(config: GatewayConfig, addresses: dict[str, str]) -> GatewayConfig:
    """``config`` with the ``backend*`` stage variables pointing at the recorded backends."""
    apis = []
    for api in config.apis:
        stages = tuple(
            dataclasses.replace(stage, variables=frozen_map({**stage.variables, **addresses}))
            if "backend" in stage.variables
            else stage
            for stage in api.stages
        )
        apis.append(dataclasses.replace(api, stages=stages))
    return dataclasses.replace(config, apis=tuple(apis))


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.id for c in HTTP_CASES])
async def test_recorded_case(case: Case, config: GatewayConfig) -> None:
    async with recorded_backend() as address, live_gateway(with_backend(config, address)) as port:
        response = await send(port, case.data["request"])
    diffs = differences(case.data, response)
    source = case.data["source"]
    assert not diffs, f"{case.id} ({source['file']} {source['key']}):\n  " + "\n  ".join(diffs)


def test_every_case_names_its_source() -> None:
    seen: set[str] = set()
    for case in CASES:
        assert case.id not in seen, f"duplicate case id {case.id}"
        seen.add(case.id)
        source = case.data["source"]
        assert {"repository", "file", "key"} <= set(source), case.id


def test_deliberate_differences_are_documented() -> None:
    """A case Portway deliberately answers differently is named, with its reason, in the contract."""
    contract = (ROOT / "docs" / "aws-contract.md").read_text()
    for case in CASES:
        if "difference" in case.data:
            assert f"`{case.id}`" in contract, f"{case.id} is not listed in docs/aws-contract.md"


def test_readme_states_the_case_count() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"{len(CASES)} recorded AWS cases" in readme, (
        f"README.md should say '{len(CASES)} recorded AWS cases'"
    )
