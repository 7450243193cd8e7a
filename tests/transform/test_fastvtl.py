"""The compiled fast path renders exactly what airspeed renders for every template it accepts,
and refuses what it does not cover (those go to airspeed)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.transform.fastvtl import compile_fast
from server.transform.vtl import Input, Template

BODY = '{"name":"rex","age":3,"ok":true,"none":null,"tags":["a","b"],"owner":{"id":"u1","n":{"x":1}}}'
PARAMS = {"path": {"id": "7"}, "querystring": {"q": "1"}, "header": {"X-Id": "h"}}

ACCEPTED = [
    '{"a": $input.json(\'$.age\'), "b": "$input.path(\'$.name\')"}',
    '#set($p = $input.path(\'$\'))\n{"o": "$p.owner.id", "all": "$p", "n": $p.tags.size()}',
    "$input.path('$.owner') $input.path('$.tags') $input.path('$.ok') [$input.path('$.none')]",
    "$input.params('id') $input.params('q') $input.params('X-Id') $input.params('nope')",
    "$context.requestId ${context.stage} $context.identity.sourceIp $context.missing $stageVariables.c",
    "$input.body",
    "$input.json('$') $input.json('$.missing') $input.path('$.owner.n.x')",
    "$!context.requestId $input.path('$.owner').id",
]
REFUSED = [
    "#if($input.path('$.ok'))yes#end",
    "#foreach($t in $input.path('$.tags'))$t#end",
    "$util.escapeJavaScript($input.body)",
    "$input.path('$').get('name')",
    "\\$notref",
]


def namespace() -> dict[str, Any]:
    return {
        "input": Input(BODY, PARAMS),
        "context": {"requestId": "r-1", "stage": "dev", "identity": {"sourceIp": "1.2.3.4"}},
        "stageVariables": {"c": "blue"},
    }


@pytest.mark.parametrize("source", ACCEPTED)
def test_fast_path_matches_airspeed(source: str) -> None:
    fast = compile_fast(source)
    assert fast is not None
    slow = Template(source)._template.merge(namespace())
    assert fast.render(namespace()) == slow


@pytest.mark.parametrize("source", REFUSED)
def test_everything_else_goes_to_airspeed(source: str) -> None:
    assert compile_fast(source) is None
    assert not Template(source).fast


@given(st.lists(st.sampled_from([*ACCEPTED, "plain text ", '{"k": 1}\n', " "]), max_size=6))
def test_concatenations_agree(pieces: list[str]) -> None:
    source = "\n".join(pieces)  # #set is compiled at the start of a line only
    fast = compile_fast(source)
    assert fast is not None
    assert fast.render(namespace()) == Template(source)._template.merge(namespace())
