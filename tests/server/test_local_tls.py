"""``portway serve --tls self-signed`` (server/local_tls.py): the local CA, its certificate, and
handlers that call ``https://{domainName}/{stage}`` for ``@connections`` with TLS verified."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from routes.integrations.python_worker_process import TLS_TRUST_VARIABLE, function_env
from server.cli import _use_local_tls, main
from server.local_tls import (
    SERVER_LIFETIME,
    default_tls_dir,
    ensure_local_tls,
    issue_ca,
    issue_server,
    needs_renewal,
)
from tests.server.test_cli import serve

CHAT = Path(__file__).resolve().parents[1] / "fixtures" / "wss-chat" / "serverless.yml"
EXAMPLE_CHAT = Path(__file__).resolve().parents[2] / "examples" / "chat" / "serverless.yml"
NOW = datetime.datetime(2026, 1, 10, tzinfo=datetime.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificate_names_chain_and_strict_verification(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    tls = ensure_local_tls(tmp_path, now)
    server, ca = _cert(tls.cert), _cert(tls.ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert server.issuer == ca.subject != server.subject
    server.verify_directly_issued_by(ca)
    for path in (tls.key, tmp_path / "ca-key.pem"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # What a handler's ssl/boto3 does: verify the chain with the trust bundle, strict X.509 on.
    context = ssl.create_default_context(cafile=str(tls.trust))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    assert tls.ca.read_bytes() in tls.trust.read_bytes()
    assert len(tls.trust.read_bytes()) > len(tls.ca.read_bytes())  # the public CAs are still trusted
    assert context.cert_store_stats()["x509_ca"] > 1


def test_trust_keeps_the_bundle_the_environment_names(tmp_path: Path) -> None:
    corporate = tmp_path / "corporate.pem"
    corporate.write_bytes(_cert_pem_of_a_new_ca())
    tls = ensure_local_tls(tmp_path / "tls", NOW, env={"AWS_CA_BUNDLE": str(corporate)})
    trust = tls.trust.read_bytes()
    assert trust.startswith(corporate.read_bytes()) and trust.endswith(tls.ca.read_bytes())


def _cert_pem_of_a_new_ca() -> bytes:
    return issue_ca(NOW)[0].public_bytes(serialization.Encoding.PEM)


def test_reused_while_valid_and_reissued_by_the_same_ca_when_expired(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path, NOW)
    ca_pem, cert_pem = first.ca.read_bytes(), first.cert.read_bytes()
    again = ensure_local_tls(tmp_path, NOW + datetime.timedelta(days=30))
    assert (again.ca.read_bytes(), again.cert.read_bytes()) == (ca_pem, cert_pem)
    later = NOW + SERVER_LIFETIME
    renewed = ensure_local_tls(tmp_path, later)
    assert renewed.ca.read_bytes() == ca_pem  # still trusted by whoever trusts the CA
    assert renewed.cert.read_bytes() != cert_pem
    assert not needs_renewal(_cert(renewed.cert), later)
    _cert(renewed.cert).verify_directly_issued_by(_cert(renewed.ca))
    # A certificate some other CA signed (the folder's CA was replaced by hand): re-issued.
    foreign_ca, foreign_key = issue_ca(later)
    foreign, _ = issue_server(foreign_ca, foreign_key, later)
    renewed.cert.write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    fixed = ensure_local_tls(tmp_path, later)
    _cert(fixed.cert).verify_directly_issued_by(_cert(fixed.ca))
    # A damaged key file: a new certificate, not a start-up failure.
    renewed.key.write_text("garbage")
    assert ensure_local_tls(tmp_path, later).key.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_expired_ca_is_replaced(tmp_path: Path) -> None:
    ca, ca_key = issue_ca(NOW)
    assert needs_renewal(ca, NOW + datetime.timedelta(days=3650))
    server, _ = issue_server(ca, ca_key, NOW)
    assert server.not_valid_after_utc <= ca.not_valid_after_utc
    first = ensure_local_tls(tmp_path, NOW).ca.read_bytes()
    replaced = ensure_local_tls(tmp_path, NOW + datetime.timedelta(days=3650))
    assert replaced.ca.read_bytes() != first
    _cert(replaced.cert).verify_directly_issued_by(_cert(replaced.ca))


def test_default_folder() -> None:
    assert default_tls_dir({"PORTWAY_TLS_DIR": "/x"}) == Path("/x")
    assert default_tls_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/portway/tls")
    assert default_tls_dir({}) == Path.home() / ".cache" / "portway" / "tls"


def test_workers_trust_the_bundle_and_a_function_can_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.setenv(TLS_TRUST_VARIABLE, "/tmp/trust.pem")
    env = function_env("h.f", "/code", "fn", "us-east-1", 128, None)
    assert env["AWS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/tmp/trust.pem"
    own = function_env("h.f", "/code", "fn", "us-east-1", 128, {"AWS_CA_BUNDLE": "/mine.pem"})
    assert own["AWS_CA_BUNDLE"] == "/mine.pem"
    monkeypatch.delenv(TLS_TRUST_VARIABLE)
    assert "AWS_CA_BUNDLE" not in function_env("h.f", "/code", "fn", "us-east-1", 128, None)


def test_tls_options_are_alternatives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", str(CHAT), "--tls", "self-signed", "--tls-cert", str(tmp_path / "c.pem")])
    assert code == 2 and "alternatives" in capsys.readouterr().err


def test_unwritable_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PORTWAY_TLS_DIR", str(tmp_path / "file" / "tls"))
    assert main(["serve", str(CHAT), "--tls", "self-signed"]) == 1
    assert capsys.readouterr().err.startswith("portway: --tls self-signed: ")


def test_other_host_names_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PORTWAY_TLS_DIR", str(tmp_path))
    monkeypatch.delenv(TLS_TRUST_VARIABLE, raising=False)
    args = argparse.Namespace(host="0.0.0.0", tls="self-signed", tls_cert=None, tls_key=None)
    with caplog.at_level(logging.WARNING, "portway"):
        _use_local_tls(args)
    assert (args.tls_cert, args.tls_key) == (tmp_path / "cert.pem", tmp_path / "key.pem")
    assert os.environ[TLS_TRUST_VARIABLE] == str(tmp_path / "trust.pem")
    monkeypatch.delenv(TLS_TRUST_VARIABLE)  # set by _use_local_tls: not for the other tests
    assert "clients reaching 0.0.0.0 by another name" in caplog.text


async def _receive_json(ws: websockets.ClientConnection) -> dict[str, str]:
    async with asyncio.timeout(20):
        message: dict[str, str] = json.loads(await ws.recv())
    return message


async def test_chat_over_wss_posts_back_through_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTWAY_TLS_DIR", str(tmp_path / "tls"))
    async with serve(CHAT, "--tls", "self-signed") as base:
        assert base.startswith("https://127.0.0.1:")
        client_tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        url = base.replace("https://", "wss://") + "/dev"
        async with (
            websockets.connect(url, ssl=client_tls) as ada,
            websockets.connect(url, ssl=client_tls) as bob,
        ):
            await ada.send(json.dumps({"action": "whoami"}))
            await bob.send(json.dumps({"action": "whoami"}))
            ada_id, bob_id = (await _receive_json(ada))["you"], (await _receive_json(bob))["you"]
            await ada.send(json.dumps({"action": "sendMessage", "to": bob_id, "text": "hi Bob"}))
            assert await _receive_json(bob) == {"from": ada_id, "text": "hi Bob"}
            await ada.send(json.dumps({"action": "untrusted"}))
            async with asyncio.timeout(20):
                refused = await ada.recv()
            assert isinstance(refused, str) and refused.startswith("refused:")
            assert "CERTIFICATE_VERIFY_FAILED" in refused
            # https with the same certificate: @connections from outside, verified by aiohttp.
            connections = f"{base}/dev/@connections/{bob_id}"
            async with aiohttp.ClientSession() as http, http.get(connections, ssl=client_tls) as resp:
                assert resp.status == 200 and (await resp.json())["identity"]["sourceIp"] == "127.0.0.1"


async def _receive_until(ws: websockets.ClientConnection, wanted: dict[str, object]) -> None:
    """Read frames until ``wanted`` arrives (other members' join notices may come first)."""
    async with asyncio.timeout(20):
        while json.loads(await ws.recv()) != wanted:
            pass


async def test_bundled_chat_example_over_wss_without_the_http_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/chat/serverless.yml as deployed to AWS (https endpoints: no PORTWAY_ENDPOINT_SCHEME):
    its boto3 PostToConnection and urllib channel calls both verify the local certificate."""
    monkeypatch.delenv("PORTWAY_ENDPOINT_SCHEME", raising=False)
    monkeypatch.setenv("PORTWAY_TLS_DIR", str(tmp_path / "tls"))
    monkeypatch.setenv("CHAT_NAMES_DIR", str(tmp_path / "names"))
    async with serve(EXAMPLE_CHAT, "--tls", "self-signed") as base:
        client_tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        url = base.replace("https://", "wss://") + "/dev?name="
        async with (
            websockets.connect(url + "Ada", ssl=client_tls) as ada,
            websockets.connect(url + "Bob", ssl=client_tls) as bob,
        ):
            await ada.send(json.dumps({"action": "join", "room": "lobby"}))
            await _receive_until(ada, {"event": "joined", "room": "lobby", "name": "Ada"})
            await bob.send(json.dumps({"action": "join", "room": "lobby"}))
            await _receive_until(bob, {"event": "joined", "room": "lobby", "name": "Bob"})
            await ada.send(json.dumps({"action": "send", "room": "lobby", "text": "hi"}))
            for member in (ada, bob):
                await _receive_until(member, {"from": "Ada", "room": "lobby", "text": "hi"})
            await bob.send(json.dumps({"action": "nope"}))  # the route response comes back too
            await _receive_until(bob, {"message": "unknown action", "actions": _help_actions()})


def _help_actions() -> dict[str, object]:
    return {
        "join": {"action": "join", "room": "lobby"},
        "send": {"action": "send", "room": "lobby", "text": "hello"},
        "broadcast": {"action": "broadcast", "text": "hello, everyone"},
    }
