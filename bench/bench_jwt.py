"""Issue #9's JWT benchmark: an HTTP API HTTP_PROXY route behind a JWT authorizer against the same
route without auth, on the same Portway process, in one run.

    .venv/bin/python bench/bench_jwt.py             # 5 runs x 10 s per target (~3 min when quiet)
    .venv/bin/python bench/bench_jwt.py --quick     # smoke run: 1 run x 3 s
    .venv/bin/python bench/bench_jwt.py --report bench/out/jwt-<UTC>.json

One invocation mints an RSA key (2048 bits) and a token (RS256, ``kid`` ``bench``, an hour of
validity), writes the JWKS to a file and starts, on 127.0.0.1 and free ports, pinned like layout B
of ``/work/shared/reference/ceilings.md``:

* ``servers/backend.py`` (the upstream), core 1;
* one Portway process, ``servers/portway_server.py --jwt-bench JWKS_FILE``, alone on core 0 (it
  serves the JWKS itself; the authorizer fetches it once, on the first token);
* the load, ``taskset -c 1 wrk -t1 -c64 -dDs --latency -H "Authorization: Bearer <token>" URL``,
  core 1.

Targets, both sent the same request bytes (the token too):

* ``open``: ``/open/hello``, no authorizer;
* ``jwt``:  ``/jwt/hello``, the JWT authorizer: the token is verified once (RS256 + claims) and
  then found in the authorizer's verified-token cache, whose hit costs the time checks and a
  copy of the shaped claims for the event.

It checks ``open`` answers 200, ``jwt`` 401 without a token and with a tampered one, 200 with the
token, then measures both targets per run, alternating which goes first (bench_http's machinery:
quiet machine, warm-up, per-process CPU, noisy attempts redone). The verdict: Portway CPU per
request on ``jwt`` at most 15 % above ``open`` (ratio open/jwt >= 0.87), over the runs where
neither side had more than ``--max-noise`` % of a core of noise, with no error and no non-2xx. It
also times one uncached verification (``verify_token``) in this process, for the record.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
from bench_http import (  # noqa: E402
    HOST,
    LOAD_CORE,
    SERVER_CORE,
    SERVERS,
    Attempt,
    Child,
    Children,
    RunDefaults,
    RunRecord,
    check_alive,
    cpu_us_per_request,
    finish_run_args,
    free_port,
    handle_signals,
    load_results,
    measure,
    median,
    pick_tool,
    run_line,
    run_meta,
    run_parser,
    save_results,
    stopping,
    target_summary,
    wait_ready,
)
from bench_throttle import HeaderLoadTool  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from jwt.algorithms import RSAAlgorithm  # noqa: E402

from server.auth.jwt_verify import JwtRules, parse_jwks, verify_token  # noqa: E402

ISSUER = "https://issuer.bench"
AUDIENCE = "bench"
KID = "bench"
# CPU per request with the authorizer at most 15 % above the same route without: open/jwt >= 1/1.15.
TARGET_RATIO = round(1 / 1.15, 3)


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    path: str


OPEN = Target("open", "HTTP API HTTP_PROXY, no authorizer", "/open/hello")
JWT = Target("jwt", "HTTP API HTTP_PROXY, JWT authorizer", "/jwt/hello")
TARGETS = (OPEN, JWT)


def mint() -> tuple[str, dict[str, Any], rsa.RSAPrivateKey]:
    """(token, JWKS document, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bench-user",
        "iat": now,
        "exp": now + 3600,
        "scope": "read",
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": KID, "use": "sig", "alg": "RS256"}
    return token, {"keys": [jwk]}, key


def verify_cost_us(token: str, jwks: dict[str, Any]) -> float:
    """One uncached verification (RS256 signature + claims), median of 5 x 200 calls, in us."""
    keys, rules = parse_jwks(jwks), JwtRules(ISSUER, frozenset({AUDIENCE}))
    now = time.time()
    runs = timeit.repeat(lambda: verify_token(token, keys, rules, now), number=200, repeat=5)
    return round(median([r / 200 * 1e6 for r in runs]), 1)


def summarize(records: list[RunRecord], max_noise: float) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for target in TARGETS:
        kept = [r.kept for r in records if r.target == target.key]
        if not kept:
            continue
        summary[target.key] = {
            "label": target.label,
            "path": target.path,
            **target_summary(kept),
            "noise_pct_median": median([a.cpu.get("noise", 0.0) for a in kept]),
            "requests": sum(int(a.raw.get("requests", 0)) for a in kept),
            "non_2xx_all_attempts": sum(
                int(a.raw.get("non_2xx", 0)) + int(a.raw.get("errors", 0))
                for r in records
                if r.target == target.key
                for a in r.attempts
            ),
        }
    if "open" not in summary or "jwt" not in summary:
        return summary
    pairs: list[tuple[int, Attempt, Attempt]] = []
    for r in records:
        if r.target != "jwt":
            continue
        base = next((x for x in records if x.target == "open" and x.run == r.run), None)
        if base is not None and base.kept.rps and r.kept.rps:
            pairs.append((r.run, r.kept, base.kept))

    def cost(authed: Attempt, open_: Attempt) -> float:
        ours = cpu_us_per_request(authed)
        return round(cpu_us_per_request(open_) / ours, 3) if ours else 0.0

    quiet = [p for p in pairs if max(p[1].cpu.get("noise", 0.0), p[2].cpu.get("noise", 0.0)) <= max_noise]
    summary["ratio"] = {
        "runs": [run for run, _, _ in pairs],
        "rps_per_run": [round(k.rps / o.rps, 3) for _, k, o in pairs],
        "cpu_cost_per_run": [cost(k, o) for _, k, o in pairs],
        "noise_per_run": [max(k.cpu.get("noise", 0.0), o.cpu.get("noise", 0.0)) for _, k, o in pairs],
        "rps": median([k.rps / o.rps for _, k, o in pairs]),
        "cpu_cost": median([cost(k, o) for _, k, o in pairs]),
        "quiet_runs": len(quiet),
        "rps_quiet": median([k.rps / o.rps for _, k, o in quiet]),
        "cpu_cost_quiet": median([cost(k, o) for _, k, o in quiet]),
    }
    return summary


def verdict(summary: dict[str, Any], max_noise: float) -> str:
    ratio = summary.get("ratio")
    if not ratio:
        return "incomplete"
    if not all(summary[t.key]["non_2xx_all_attempts"] == 0 for t in TARGETS):
        return "INVALID (errors or non-2xx responses)"
    if ratio["quiet_runs"] == 0:
        return f"inconclusive: no run with both sides under {max_noise:.0f} % noise"
    return "met" if ratio["cpu_cost_quiet"] >= TARGET_RATIO else "NOT met"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        run_line(meta, f"Portway alone on core {SERVER_CORE}; backend and the load tool on core {LOAD_CORE}"),
        "",
        "| target | req/s (median) | min - max | p50 ms | p99 ms | Portway CPU % | Portway CPU us/req "
        "| backend CPU % | load CPU % | noise % (median / max) | requests | errors / non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in TARGETS:
        s = summary.get(target.key)
        if s is None:
            continue
        lines.append(
            f"| {s['label']} (`{s['path']}`) | {s['rps']:,.0f} | {s['rps_min']:,.0f} - {s['rps_max']:,.0f} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['server_cpu_pct']:.0f} "
            f"| {s['server_us_per_req']:.1f} | {s['backend_cpu_pct']:.0f} | {s['load_cpu_pct']:.0f} "
            f"| {s['noise_pct_median']:.0f} / {s['noise_pct_max']:.0f} | {s['requests']:,} "
            f"| {s['errors']} / {s['non_2xx']} |"
        )
    ratio = summary.get("ratio")
    if ratio:
        max_noise = meta.get("max_noise_pct", 20.0)
        quiet = (
            f"req/s {ratio['rps_quiet']:.3f}x, CPU per request {ratio['cpu_cost_quiet']:.3f}x"
            if ratio["quiet_runs"]
            else "n/a"
        )
        per_run = "; ".join(
            f"{r}: {x:.3f}, {c:.3f}, {n:.0f}"
            for r, x, c, n in zip(
                ratio["runs"],
                ratio["rps_per_run"],
                ratio["cpu_cost_per_run"],
                ratio["noise_per_run"],
                strict=True,
            )
        )
        lines += [
            "",
            f"Ratio jwt / open (median of per-run ratios): req/s **{ratio['rps']:.3f}x**, CPU per request "
            f"(open us / jwt us) {ratio['cpu_cost']:.3f}x; over the {ratio['quiet_runs']} of "
            f"{len(ratio['runs'])} runs with at most {max_noise:.0f} % noise: {quiet}. "
            f"Per run (req/s; CPU; noise %): {per_run}.",
            "",
            f"One uncached verification (RS256 + claims, `verify_token`, in the driver process): "
            f"{meta.get('verify_us', '?')} us.",
            "",
            f"Target (CPU per request with the JWT authorizer at most 15 % above without: open/jwt >= "
            f"{TARGET_RATIO}; no error and no non-2xx in any attempt): **{verdict(summary, max_noise)}**.",
        ]
    return "\n".join(lines) + "\n"


DEFAULTS = RunDefaults(runs=5, redo=2, quiet_timeout=60.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_parser(__doc__.splitlines()[0] if __doc__ else None, DEFAULTS)
    return finish_run_args(parser, parser.parse_args(argv), DEFAULTS)


def report(path: Path) -> int:
    meta, records = load_results(path)
    table = markdown(summarize(records, meta.get("max_noise_pct", 20.0)), meta)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def check_targets(base: str, token: str) -> None:
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    expected = (
        (OPEN.path, {}, 200),
        (JWT.path, {}, 401),
        (JWT.path, {"Authorization": f"Bearer {tampered}"}, 401),
        (JWT.path, {"Authorization": f"Bearer {token}"}, 200),
    )
    for path, headers, status in expected:
        got, body = get(base + path, headers)
        if got != status or (status == 200 and b'"ok":true' not in body):
            raise RuntimeError(f"{path} {list(headers)} answered {got} {body[:300]!r}, expected {status}")
    print(f"check: {OPEN.path} 200; {JWT.path} 401 without or with a tampered token, 200 with it", flush=True)


def describe(attempt: Attempt) -> str:
    cpu, raw = attempt.cpu, attempt.raw
    target = next(t.key for t in TARGETS if f"{t.path} " in attempt.command + " ")
    return (
        f"{target:<5} {attempt.rps:>9,.0f} req/s  {cpu_us_per_request(attempt):5.1f} us/req  "
        f"p50 {attempt.p50_ms:6.2f} ms  p99 {attempt.p99_ms:6.2f} ms  "
        f"cpu portway {cpu['server']:.0f}% backend {cpu['backend']:.0f}% "
        f"load {cpu['load']:.0f}% noise {cpu['noise']:.0f}%  "
        f"non-2xx {raw.get('non_2xx', 0)} errors {raw.get('errors', 0)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    handle_signals()
    tool_name = pick_tool(args)
    if tool_name is None:
        return 2
    token, jwks, _ = mint()
    tool = HeaderLoadTool(tool_name, args.connections, headers=(f"Authorization: Bearer {token}",))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    children = Children(args.out / f"logs-jwt-{stamp}")
    py = sys.executable
    ports = {name: free_port() for name in ("backend", "portway")}
    meta = run_meta(
        args, tool, argv, f"B: Portway on core {SERVER_CORE}; backend and load tool on core {LOAD_CORE}"
    )
    meta["target_ratio"] = TARGET_RATIO
    meta["verify_us"] = verify_cost_us(token, jwks)
    records: list[RunRecord] = []
    with tempfile.TemporaryDirectory() as tmp, stopping(children, meta):
        jwks_file = Path(tmp) / "jwks.json"
        jwks_file.write_text(json.dumps(jwks))
        specs: dict[str, tuple[list[str], int]] = {
            "backend": ([py, str(SERVERS / "backend.py"), "--port", str(ports["backend"])], LOAD_CORE),
            "portway": (
                [
                    py,
                    str(SERVERS / "portway_server.py"),
                    "--port",
                    str(ports["portway"]),
                    "--backend",
                    f"http://{HOST}:{ports['backend']}",
                    "--jwt-bench",
                    str(jwks_file),
                    "--jwt-issuer",
                    ISSUER,
                    *args.portway_arg,
                ],
                SERVER_CORE,
            ),
        }
        started: dict[str, Child] = {}
        for name in ("backend", "portway"):
            argv_, core = specs[name]
            started[name] = children.start(name, argv_, core)
            meta["servers"][name] = f"taskset -c {core} " + " ".join(argv_)
            wait_ready(started[name], f"http://{HOST}:{ports[name]}/")
            print(f"started {name} (pid {started[name].pid}, core {core}, port {ports[name]})", flush=True)
        base = f"http://{HOST}:{ports['portway']}"
        check_targets(base, token)
        trees = {"server": started["portway"].pid, "backend": started["backend"].pid}
        for run in range(1, args.runs + 1):
            order = TARGETS if run % 2 else TARGETS[::-1]  # alternate who goes first
            for target in order:
                records.append(
                    measure(tool, base + target.path, trees, args, RunRecord(target.key, run), describe)
                )
                check_alive(started)
    if meta.get("interrupted") and not records:
        return 130
    summary = summarize(records, args.max_noise)
    summary["verdict"] = verdict(summary, args.max_noise)
    save_results(args.out, f"jwt-{stamp}", meta, summary, records, markdown(summary, meta))
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
