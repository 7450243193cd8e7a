"""`portway validate`: handlers checked statically, unknown events, nothing to serve, --strict;
`portway serve` on a port in use."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, serverless: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    config = tmp_path / "serverless.yml"
    config.write_text(textwrap.dedent(serverless))
    return config


def validate(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, list[str], str]:
    code = main(["validate", str(config), *extra])
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


SERVICE = """
service: todos
provider: {name: aws, runtime: python3.12}
functions:
  create:
    handler: todos/create.create
    events: [{http: {path: todos, method: post, cros: true}}]
  list:
    handler: todos/list.lst
    events: [{http: {path: todos, method: get}}]
  get:
    handler: todos/get.get
    events: [{htttp: {path: 'todos/{id}', method: get}}]
  broken:
    handler: todos/broken.handler
    events: [{httpApi: 'GET /broken'}]
  gone:
    handler: todos/gone.handler
    events: [{httpApi: {method: GET, path: /gone, authoriser: x}}]
  queue:
    handler: todos/create.create
    events: [{sqs: 'arn:aws:sqs:us-east-1:123456789012:q'}]
"""

FILES = {
    "todos/__init__.py": "",
    "todos/create.py": """
        import json

        def create(event, context):
            return {"statusCode": 201, "body": json.dumps({})}
        """,
    "todos/list.py": """
        def list(event, context):
            return {"statusCode": 200, "body": "[]"}
        """,
    "todos/get.py": "def get(event, context):\n    return {}\n",
    "todos/broken.py": "def handler(event, context)\n    return {}\n",
}


def test_problems_are_marked_warnings_and_fail_under_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(tmp_path, SERVICE, FILES)
    code, err, out = validate(capsys, config)
    assert code == 0
    warnings = [line.removeprefix(f"{config}: warning: ") for line in err]
    assert all(line.startswith(f"{config}: warning: ") for line in err), err
    assert warnings == [
        "functions.create.events[0].http.cros: unknown key 'cros' (did you mean 'cors'?) (ignored)",
        "functions.list.handler: function 'lst' is not defined in todos/list.py (did you mean 'list'?)",
        "functions.get.events[0]: unknown event type 'htttp' (did you mean 'http'?) (ignored)",
        "functions.broken.handler: handler module todos/broken.py cannot be imported: line 1: expected ':' "
        "(SyntaxError)",
        f"functions.gone.handler: handler module 'todos.gone' not found in {tmp_path.resolve()}",
        "functions.gone.events[0].httpApi.authoriser: unknown key 'authoriser' (did you mean 'authorizer'?) "
        "(ignored)",
        "functions.queue.events[0]: 'sqs' events are not served by Portway (ignored)",
    ]
    assert out.strip() == f"{config}: OK (2 API(s), 4 route(s), 7 warning(s))"

    code, err, out = validate(capsys, config, "--strict")
    assert code == 1 and out == ""
    assert err[-1] == f"{config}: 7 warning(s), an error with --strict (2 API(s), 4 route(s))"


MODULE_FORMS = {
    "plain": "def handler(event, context):\n    return {}\n",
    "async": "async def handler(event, context):\n    return {}\n",
    "assigned": "from mangum import Mangum\napp = object()\nhandler = Mangum(app)\n",
    "annotated": "handler: object = print\n",
    "unpacked": "(handler, other) = (print, print)\n",
    "imported": "from todos.create import create as handler\n",
    "conditional": "import os\nif os.environ.get('X'):\n    def handler(e, c): ...\nelse:\n    handler = 1\n",
    "guarded": "try:\n    import ujson as json\nexcept ImportError:\n    import json\nhandler = json.dumps\n",
    "star import": "from todos.create import *\n",
    "module getattr": "def __getattr__(name):\n    return print\n",
    "class": "class handler:\n    pass\n",
    "package": None,  # todos/forms/__init__.py
}


@pytest.mark.parametrize("form", list(MODULE_FORMS))
def test_functions_bound_at_module_level_are_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    source = MODULE_FORMS[form]
    files = dict(FILES)
    if source is None:
        files["todos/forms/__init__.py"] = "def handler(event, context):\n    return {}\n"
    else:
        files["todos/forms.py"] = source
    config = project(
        tmp_path,
        """
        service: forms
        provider: {name: aws}
        functions:
          f: {handler: todos/forms.handler, events: [{httpApi: 'GET /'}]}
          dotted: {handler: todos.forms.handler, events: [{httpApi: 'GET /dotted'}]}
        """,
        files,
    )
    assert validate(capsys, config, "--strict")[:2] == (0, [])


def test_a_function_only_defined_inside_a_function_is_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(
        tmp_path,
        """
        service: s
        provider: {name: aws}
        functions:
          f: {handler: handler.hello, events: [{httpApi: 'GET /'}]}
        """,
        {"handler.py": "def make():\n    def hello(event, context):\n        return {}\n    return hello\n"},
    )
    code, err, _ = validate(capsys, config, "--strict")
    assert code == 1
    message = "function 'hello' is not defined in handler.py (it defines: make)"
    assert err[0] == f"{config}: warning: functions.f.handler: {message}"


def test_nothing_to_serve_fails_under_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(
        tmp_path,
        """
        service: jobs
        provider: {name: aws}
        functions:
          worker: {handler: handler.work, events: [{schedule: rate(1 minute)}]}
        """,
        {"handler.py": "def work(event, context):\n    return None\n"},
    )
    code, err, out = validate(capsys, config)
    assert code == 0 and "OK (0 API(s), 0 route(s), 2 warning(s))" in out
    assert f"{config}: warning: functions: no http, httpApi or websocket events: nothing to serve" in err
    assert validate(capsys, config, "--strict")[0] == 1


def test_an_empty_file_has_no_stray_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    code, err, _ = validate(capsys, empty)
    assert code == 1
    assert err == [f"{empty}: the file is empty", f"{empty}: 1 error(s)"]


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "server", "serve", "examples/hello/portway.yaml", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == f"portway: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert "listening" not in result.stdout


def test_a_misspelt_handler_setting_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(
        tmp_path,
        """
        service: s
        provider: {name: aws}
        functions:
          f: {hander: handler.f, events: [{httpApi: 'GET /'}]}
        """,
        {"handler.py": "def f(event, context):\n    return {}\n"},
    )
    code, err, _ = validate(capsys, config)
    assert code == 1
    assert err[0] == (
        f"{config}: functions.f.handler: missing handler (path/module.function) "
        "('hander' is not a function setting: did you mean 'handler'?)"
    )


def test_an_address_not_on_this_machine_is_one_line() -> None:
    """192.0.2.1 (TEST-NET-1) is no local address: the bind fails locally, nothing is sent."""
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "examples/hello/portway.yaml", "--host", "192.0.2.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last == "portway: cannot listen on 192.0.2.1:3000: cannot assign requested address"


def test_native_format_handlers_are_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pets.py").write_text("def get_pet(event, context):\n    return {}\n")
    config = tmp_path / "portway.yaml"
    config.write_text("portway: 1\napis:\n  - name: pets\n    routes:\n      GET /pets/{id}: pets.getpet\n")
    code, err, out = validate(capsys, config)
    assert code == 0 and "1 warning(s)" in out
    where = 'apis[0].routes["GET /pets/{id}"]'
    message = "function 'getpet' is not defined in pets.py (did you mean 'get_pet'?)"
    assert err == [f"{config}: warning: {where}: {message}"]
    assert validate(capsys, config, "--strict")[0] == 1
