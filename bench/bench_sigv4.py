"""SigV4 verification cost (issue 9): in-process microseconds per verification, and a route's server
CPU per request with and without ``aws_iam``, measured in one run.

    .venv/bin/python bench/bench_sigv4.py [--number 20000] [--rounds 3] [--duration 5] [-c 16]

Part 1 (in-process, ``timeit``, best of 5): :func:`server.auth.sigv4.verify` on a request signed
by botocore's ``SigV4Auth`` (header form, the headers boto3 sends) and ``SigV4QueryAuth``
(presigned), the signing key cached (the normal case: one derivation per key and day) and cold
(the four HMACs of the key derivation included); and :func:`server.auth.iam.authorize_iam`
(verification + the key's policy evaluation).

Part 2 (end to end): ``bench/servers/portway_iam.py`` pinned to core 0, ``bench/loadgen.py`` on
core 1; ``GET /dev/open`` (MOCK), the same with the SigV4 headers sent anyway (``open+sig``: what
receiving them costs) and ``GET /dev/iam`` (the same MOCK behind ``aws_iam``) are loaded in
alternation, ``--rounds`` times each, and the server's CPU time (``/proc/<pid>/stat``) is divided
by the requests it completed. One header-signed request is reused for the whole run (a
replay within the 5-minute window, which SigV4 allows, so the run must stay under 5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import timeit
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "servers"))

from botocore.auth import SigV4Auth, SigV4QueryAuth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from portway_iam import KEY_ID, SECRET, iam_config  # noqa: E402

from server.auth import sigv4  # noqa: E402
from server.auth.iam import INVOKE, IamKeyring, authorize_iam  # noqa: E402
from server.messages import HttpRequest  # noqa: E402

SDK_HEADERS = {
    "User-Agent": "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7",
    "Accept-Encoding": "identity",
    "Content-Type": "application/json",
}


def signed(url: str, *, presign: bool = False) -> tuple[str, list[tuple[str, str]]]:
    request: Any = AWSRequest(method="GET", url=url, headers=dict(SDK_HEADERS))
    request.headers["Host"] = urlsplit(url).netloc
    credentials = Credentials(KEY_ID, SECRET)
    signer = (
        SigV4QueryAuth(credentials, "execute-api", "us-east-1", 300)
        if presign
        else SigV4Auth(credentials, "execute-api", "us-east-1")
    )
    signer.add_auth(request)
    return request.url, [(k, str(v)) for k, v in request.headers.items()]


def as_request(url: str, headers: list[tuple[str, str]]) -> HttpRequest:
    parts = urlsplit(url)
    return HttpRequest("GET", parts.path, parts.query, tuple(headers), b"", "127.0.0.1", parts.netloc)


def per_call_us(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def in_process(number: int) -> dict[str, float]:
    keyring = IamKeyring.from_config(iam_config())
    header = as_request(*signed("http://127.0.0.1:8090/dev/iam?kind=dog&page=2"))
    presigned = as_request(*signed("http://127.0.0.1:8090/dev/iam", presign=True))
    now = time.time()
    arn = "arn:aws:execute-api:us-east-1:123456789012:iambench01/dev/GET/iam"

    def verify(request: HttpRequest) -> None:
        sigv4.verify(request, secrets=keyring.secret, region="us-east-1", now=now)

    def cold() -> None:
        sigv4._signing_key.cache_clear()
        verify(header)

    results = {
        "verify_header_us": per_call_us(lambda: verify(header), number),
        "verify_presigned_us": per_call_us(lambda: verify(presigned), number),
        "verify_header_cold_key_us": per_call_us(cold, number // 4),
        "authorize_iam_us": per_call_us(
            lambda: authorize_iam(keyring, header, region="us-east-1", action=INVOKE, resource=arn, now=now),
            number,
        ),
    }
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def load(url: str, headers: list[tuple[str, str]], connections: int, duration: float) -> dict[str, Any]:
    command = [*pinned(1), sys.executable, str(ROOT / "bench" / "loadgen.py"), url, "-c", str(connections)]
    command += ["-d", str(duration), "--json"]
    for name, value in headers:
        if name.lower() not in ("host", "user-agent"):  # loadgen sends its own Host and User-Agent
            command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def end_to_end(rounds: int, duration: float, connections: int) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [*pinned(0), sys.executable, str(ROOT / "bench" / "servers" / "portway_iam.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "listening"
        base = f"http://127.0.0.1:{port}/dev"
        # loadgen's own User-Agent is part of what it sends: sign with it, so the signature holds.
        _, iam_headers = signed_for_loadgen(f"{base}/iam")
        with urllib.request.urlopen(f"{base}/open", timeout=5) as r:
            assert r.status == 200
        # open+sig: the open route sent the same SigV4 headers (ignored there), which separates
        # the cost of receiving ~300 more header bytes from the cost of checking them.
        targets = (("open", "open", []), ("open+sig", "open", iam_headers), ("iam", "iam", iam_headers))
        figures: dict[str, list[float]] = {name: [] for name, _, _ in targets}
        rates: dict[str, list[float]] = {name: [] for name, _, _ in targets}
        for _ in range(rounds):
            for name, path, headers in targets:
                before = cpu_seconds(server.pid)
                result = load(f"{base}/{path}", headers, connections, duration)
                spent = cpu_seconds(server.pid) - before
                assert result["non_2xx"] == 0 and result["errors"] == 0, result
                figures[name].append(spent / max(result["requests"], 1) * 1e6)
                rates[name].append(result["rps"])
        return {
            "server_cpu_us_per_request": {k: statistics.median(v) for k, v in figures.items()},
            "requests_per_second": {k: statistics.median(v) for k, v in rates.items()},
            "runs": {"cpu_us": figures, "rps": rates},
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def signed_for_loadgen(url: str) -> tuple[str, list[tuple[str, str]]]:
    request: Any = AWSRequest(method="GET", url=url, headers={"User-Agent": "portway-loadgen"})
    request.headers["Host"] = urlsplit(url).netloc
    SigV4Auth(Credentials(KEY_ID, SECRET), "execute-api", "us-east-1").add_auth(request)
    return request.url, [(k, str(v)) for k, v in request.headers.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("-c", "--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if args.rounds * 3 * (args.duration + 3) > 280:
        parser.error("the run must stay within SigV4's 5-minute window (the signed request is reused)")
    report = {
        "in_process": in_process(args.number),
        "end_to_end": end_to_end(args.rounds, args.duration, args.connections),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
