"""``portway keys|plans|usage``: manage a running gateway through its admin API.

    portway keys list | create NAME | enable ID | disable ID | rotate ID | delete ID | import FILE.csv
    portway plans list | show ID | put FILE.json | delete ID | add-key PLAN KEY | remove-key PLAN KEY
    portway usage PLAN --from YYYY-MM-DD --to YYYY-MM-DD [--key ID]

Every command takes ``--url`` (default ``$PORTWAY_ADMIN_URL``, else
``http://127.0.0.1:3000/@admin``, ``portway serve``'s default port). Credentials come from the
environment: ``PORTWAY_ADMIN_TOKEN`` (bearer token), else ``PORTWAY_ADMIN_ACCESS_KEY_ID`` and
``PORTWAY_ADMIN_SECRET_ACCESS_KEY`` (SigV4, region ``--region``). Output is JSON (AWS CLI field
names: lists and usage under ``items``), ``list`` prints a table unless ``--json``. A failure
prints ``portway: <ErrorType>: <message>`` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode

__all__ = ["COMMANDS", "AdminClient", "AdminClientError", "add_parsers", "run"]

COMMANDS = frozenset({"keys", "plans", "usage"})
DEFAULT_URL = "http://127.0.0.1:3000/@admin"
_TIMEOUT_S = 30.0


class AdminClientError(Exception):
    """The admin API refused the request (``error_type`` from ``x-amzn-ErrorType``) or could
    not be reached."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class AdminClient:
    """A small synchronous client of the admin API (urllib; SigV4 through botocore)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._sigv4 = (access_key_id, secret_access_key) if access_key_id and secret_access_key else None
        self._region = region

    @classmethod
    def from_env(cls, url: str, region: str, environ: Mapping[str, str] | None = None) -> AdminClient:
        env = os.environ if environ is None else environ
        return cls(
            url,
            token=env.get("PORTWAY_ADMIN_TOKEN") or None,
            access_key_id=env.get("PORTWAY_ADMIN_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("PORTWAY_ADMIN_SECRET_ACCESS_KEY") or None,
            region=region,
        )

    def call(
        self,
        method: str,
        segments: Sequence[str],
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        raw: bytes | None = None,
    ) -> Any:
        """One request: ``segments`` of the path below the admin prefix (quoted here); ``body``
        is sent as JSON, ``raw`` as is. Returns the decoded JSON answer (None when empty)."""
        url = self.url + "".join("/" + quote(part, safe="") for part in segments)
        if query:
            url += "?" + urlencode(query)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        elif self._sigv4 is not None:
            headers = self._signed(method, url, headers, data or b"")
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            error_type = (exc.headers.get("x-amzn-ErrorType") or f"HTTP {exc.code}").split(":")[0]
            try:
                message = json.loads(payload).get("message") or payload.decode(errors="replace")
            except (ValueError, AttributeError):
                message = payload.decode(errors="replace") or exc.reason
            raise AdminClientError(error_type, str(message)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminClientError("ConnectionError", f"cannot reach {self.url}: {reason}") from None
        return json.loads(payload) if payload.strip() else None

    def _signed(self, method: str, url: str, headers: dict[str, str], data: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        assert self._sigv4 is not None
        request: Any = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(Credentials(*self._sigv4), "apigateway", self._region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    def items(self, segments: Sequence[str], query: Mapping[str, str] | None = None) -> list[Any]:
        """Every item of a paginated listing (``item`` on the wire), following ``position``."""
        found: list[Any] = []
        params = {**(query or {}), "limit": "500"}
        while True:
            page = self.call("GET", segments, query=params) or {}
            found.extend(page.get("item") or [])
            if not page.get("position"):
                return found
            params["position"] = page["position"]


# -- output -----------------------------------------------------------------------------------


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        out.write(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def _limits(raw: Mapping[str, Any] | None) -> str:
    return "-" if not raw else f"{raw.get('rateLimit')}/s burst {raw.get('burstLimit')}"


def _quota(raw: Mapping[str, Any] | None) -> str:
    if not raw:
        return "-"
    offset = f" offset {raw['offset']}" if raw.get("offset") else ""
    return f"{raw.get('limit')}/{str(raw.get('period', '')).lower()}{offset}"


# -- commands ---------------------------------------------------------------------------------


def _keys(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    action = args.action
    if action == "list":
        keys = client.items(["apikeys"], {"name": args.name} if args.name else None)
        if args.json:
            _print_json({"items": keys}, out)
            return
        rows = [
            [
                key["id"],
                key["name"],
                "yes" if key["enabled"] else "no",
                (key.get("valueHint") or "") + "...",
                ",".join(key.get("usagePlanIds") or []) or "-",
                key.get("customerId") or "-",
            ]
            for key in keys
        ]
        _table(rows, ["ID", "NAME", "ENABLED", "VALUE", "PLANS", "CUSTOMER"], out)
    elif action == "create":
        body: dict[str, Any] = {"name": args.name, "enabled": not args.disabled}
        for field, value in (
            ("value", args.value),
            ("description", args.description),
            ("customerId", args.customer_id),
        ):
            if value:
                body[field] = value
        created = client.call("POST", ["apikeys"], body=body)
        for plan in args.plan or ():
            client.call(
                "POST", ["usageplans", plan, "keys"], body={"keyId": created["id"], "keyType": "API_KEY"}
            )
            created.setdefault("usagePlanIds", []).append(plan)
        _print_json(created, out)
    elif action in ("enable", "disable"):
        ops = [{"op": "replace", "path": "/enabled", "value": "true" if action == "enable" else "false"}]
        _print_json(client.call("PATCH", ["apikeys", args.id], body={"patchOperations": ops}), out)
    elif action == "rotate":
        _print_json(
            client.call(
                "POST", ["apikeys", args.id, "rotate"], body={"value": args.value} if args.value else {}
            ),
            out,
        )
    elif action == "delete":
        client.call("DELETE", ["apikeys", args.id])
        _print_json({"deleted": args.id}, out)
    elif action == "import":
        query = {"mode": "import", "format": "csv"}
        if args.fail_on_warnings:
            query["failonwarnings"] = "true"
        result = client.call("POST", ["apikeys"], query=query, raw=Path(args.file).read_bytes())
        _print_json(result, out)


def _plans(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    action = args.action
    if action == "list":
        plans = client.items(["usageplans"])
        if args.json:
            _print_json({"items": plans}, out)
            return
        rows = [
            [
                plan["id"],
                plan.get("name", ""),
                ",".join(f"{s['apiId']}:{s['stage']}" for s in plan.get("apiStages") or []) or "-",
                _limits(plan.get("throttle")),
                _quota(plan.get("quota")),
            ]
            for plan in plans
        ]
        _table(rows, ["ID", "NAME", "STAGES", "THROTTLE", "QUOTA"], out)
    elif action == "show":
        plan = client.call("GET", ["usageplans", args.id])
        plan["keys"] = client.items(["usageplans", args.id, "keys"])
        _print_json(plan, out)
    elif action == "put":
        try:
            body = json.loads(Path(args.file).read_text())
        except ValueError as exc:
            raise AdminClientError("BadRequestException", f"{args.file}: not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise AdminClientError("BadRequestException", f"{args.file}: a usage plan is a JSON object")
        plan_id = body.get("id")
        if plan_id:
            _print_json(client.call("PUT", ["usageplans", str(plan_id)], body=body), out)
        else:
            _print_json(client.call("POST", ["usageplans"], body=body), out)
    elif action == "delete":
        client.call("DELETE", ["usageplans", args.id])
        _print_json({"deleted": args.id}, out)
    elif action == "add-key":
        body = {"keyId": args.key, "keyType": "API_KEY"}
        _print_json(client.call("POST", ["usageplans", args.plan, "keys"], body=body), out)
    elif action == "remove-key":
        client.call("DELETE", ["usageplans", args.plan, "keys", args.key])
        _print_json({"removed": args.key, "usagePlanId": args.plan}, out)


def _usage(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    query = {"startDate": args.start, "endDate": args.end, "limit": "500"}
    if args.key:
        query["keyId"] = args.key
    merged: dict[str, Any] = {}
    items: dict[str, Any] = {}
    while True:
        page = client.call("GET", ["usageplans", args.plan, "usage"], query=query) or {}
        merged = {name: page.get(name) for name in ("usagePlanId", "startDate", "endDate")}
        items.update(page.get("values") or {})
        if not page.get("position"):
            break
        query["position"] = page["position"]
    _print_json({**merged, "items": items}, out)


_RUNNERS: dict[str, Callable[[AdminClient, argparse.Namespace, TextIO], None]] = {
    "keys": _keys,
    "plans": _plans,
    "usage": _usage,
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("PORTWAY_ADMIN_URL") or DEFAULT_URL,
        help=f"the gateway's admin API (env PORTWAY_ADMIN_URL; default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("PORTWAY_ADMIN_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
        help="SigV4 region: the gateway's region (when PORTWAY_ADMIN_TOKEN is not set)",
    )


def add_parsers(sub: Any) -> None:
    """Register ``keys``, ``plans`` and ``usage`` on the ``portway`` sub-command parser."""
    keys = sub.add_parser("keys", help="API keys of a running gateway (admin API)")
    key_actions = keys.add_subparsers(dest="action", required=True)
    listing = key_actions.add_parser("list", help="list keys (values are never shown)")
    listing.add_argument("--name", help="only names starting with this")
    listing.add_argument("--json", action="store_true")
    create = key_actions.add_parser("create", help="create a key (its value is printed once)")
    create.add_argument("name")
    create.add_argument("--value", help="20-128 letters and digits (default: generated)")
    create.add_argument("--description")
    create.add_argument("--customer-id")
    create.add_argument("--disabled", action="store_true", help="create it disabled")
    create.add_argument("--plan", action="append", help="add it to this usage plan (repeatable)")
    for name in ("enable", "disable", "delete"):
        key_actions.add_parser(name, help=f"{name} a key").add_argument("id")
    rotate = key_actions.add_parser("rotate", help="give a key a new value (printed once)")
    rotate.add_argument("id")
    rotate.add_argument("--value", help="the new value (default: generated)")
    importing = key_actions.add_parser("import", help="import keys from a CSV file (AWS's format)")
    importing.add_argument("file")
    importing.add_argument("--fail-on-warnings", action="store_true", help="import nothing if a row is bad")
    plans = sub.add_parser("plans", help="usage plans of a running gateway (admin API)")
    plan_actions = plans.add_subparsers(dest="action", required=True)
    plan_actions.add_parser("list", help="list usage plans").add_argument("--json", action="store_true")
    plan_actions.add_parser("show", help="a plan and its keys").add_argument("id")
    plan_actions.add_parser("put", help="create or replace a plan from a JSON file").add_argument("file")
    plan_actions.add_parser("delete", help="delete a plan").add_argument("id")
    for name, verb in (("add-key", "add a key to"), ("remove-key", "remove a key from")):
        parser = plan_actions.add_parser(name, help=f"{verb} a plan")
        parser.add_argument("plan")
        parser.add_argument("key")
    usage = sub.add_parser("usage", help="requests per key per day of a usage plan (GetUsage)")
    usage.add_argument("plan")
    usage.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    usage.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    usage.add_argument("--key", help="only this API key id")
    for parser in (keys, plans, usage, *key_actions.choices.values(), *plan_actions.choices.values()):
        if parser not in (keys, plans):
            _common(parser)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a ``keys``/``plans``/``usage`` command; 0 on success, 1 with the error on stderr."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    client = AdminClient.from_env(args.url, args.region)
    try:
        _RUNNERS[args.command](client, args, out)
    except AdminClientError as exc:
        err.write(f"portway: {exc}\n")
        return 1
    except OSError as exc:  # a file to import or put
        err.write(f"portway: {exc}\n")
        return 1
    return 0
