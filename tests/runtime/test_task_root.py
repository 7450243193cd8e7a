"""Handlers are imported as Lambda imports them (issue 10 item 2)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from routes.integrations.python_inprocess import InProcessInvoker
from tests.runtime.serve import copy_project, load, serving


async def test_rest_todos_project_served_as_on_lambda(tmp_path: Path) -> None:
    root = copy_project("rest_todos", tmp_path).resolve()
    config = load(root / "serverless.yml")
    (api,) = config.apis
    handlers = {route.integration.handler for route in api.routes if route.integration.handler}
    assert handlers == {"todos.create.create", "todos.list.list", "todos.where.where"}
    assert {route.integration.code_dir for route in api.routes if route.integration.handler} == {root}
    async with serving(config) as client:
        created = await client.post("/dev/todos", json={"text": "buy milk"})
        assert created.status == 200, await created.text()
        listed = await client.get("/dev/todos")
        assert listed.status == 200, await listed.text()
        (item,) = await listed.json()
        assert item["text"] == "buy milk" and isinstance(item["createdAt"], int)  # decimalencoder ran
        assert (root / "serverless-rest-api-with-dynamodb-dev.json").is_file()  # cwd = task root
        where = await (await client.get("/dev/where")).json()
    assert where == {"module": "todos.where", "task_root": str(root), "path0": str(root), "cwd": str(root)}


async def test_inprocess_imports_the_same_module_name(tmp_path: Path) -> None:
    root = copy_project("rest_todos", tmp_path).resolve()
    invoker = InProcessInvoker(
        handler="todos.where.where", code_dir=root, function_name="where", region="eu-west-1", account_id="1"
    )
    try:
        result = await invoker.invoke_event({}, request_id="r1", timeout_s=5.0)
    finally:
        await invoker.close()
        sys.path[:] = [p for p in sys.path if p != str(root)]
        for name in [n for n in sys.modules if n == "todos" or n.startswith("todos.")]:
            del sys.modules[name]
    where = json.loads(result["body"])
    # The module name and sys.path are Lambda's; the gateway's cwd and environment are shared
    # by every in-process function (docs/integrations.md).
    assert where["module"] == "todos.where" and where["path0"] == str(root)
    assert where["cwd"] == os.getcwd()
