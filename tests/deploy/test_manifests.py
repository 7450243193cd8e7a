"""deploy/docker-compose.yml, deploy/nginx.conf and deploy/k8s/: valid YAML (and a config nginx
itself accepts), with commands, ports, environment and probes consistent with ``portway serve``
(its real argument parser), the health paths of server/health.py and the Dockerfile."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.cli import _parser, main
from server.health import HEALTH_PATH, READY_PATH
from tests.deploy.dockerfile import parse

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def serve_args(argv: list[str], env: dict[str, str]) -> argparse.Namespace:
    """``argv`` parsed by ``portway serve``'s own parser, with the container's environment."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("PORTWAY_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        args = _parser().parse_args(argv)
    assert args.command == "serve"
    return args


def image_env() -> dict[str, str]:
    return parse(ROOT / "Dockerfile")[-1].env()


# -- docker compose ------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_redis_persists_with_aof_on_a_volume() -> None:
    redis = compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])
    assert redis["volumes"][0].split(":")[0] in compose()["volumes"]


def test_compose_gateways_match_the_cli_and_nginx() -> None:
    services = compose()["services"]
    gateways = sorted(name for name in services if name.startswith("gateway-"))
    assert gateways == ["gateway-1", "gateway-2", "gateway-3"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    upstream = re.search(r"upstream portway \{(.*?)\}", nginx, re.S)
    assert upstream is not None
    servers = re.findall(r"server (\S+):(\d+)", upstream.group(1))
    for name in gateways:
        gateway = services[name]
        env = {**image_env(), **gateway["environment"]}
        args = serve_args(gateway["command"], env)
        assert args.host == "0.0.0.0"
        assert (name, str(args.port)) in servers
        assert args.redis_url == "redis://redis:6379/0" and "redis" in gateway["depends_on"]
        assert args.state_file is None  # else serve warns that Redis ignores it
        # The config is mounted, and the path given to serve is inside the mount.
        mounts = [v for v in gateway["volumes"] if isinstance(v, str)]
        source, target = mounts[0].split(":")[:2]
        assert str(args.config).startswith(target + "/")
        assert (DEPLOY / source / args.config.relative_to(target)).is_file()
        # docker stop waits for the drain: --drain-timeout + the CLI's close margin (5 s).
        grace = int(gateway["stop_grace_period"].rstrip("s"))
        assert grace >= args.drain_timeout + 5
    assert len(servers) == len(gateways)
    assert services["lb"]["volumes"] == ["./nginx.conf:/etc/nginx/nginx.conf:ro"]


def test_nginx_conf_passes_websockets_and_nginx_accepts_it(tmp_path: Path) -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $connection_upgrade;" in text
    assert "proxy_http_version 1.1;" in text
    read_timeout = re.search(r"proxy_read_timeout (\d+)h;", text)
    assert read_timeout is not None and int(read_timeout.group(1)) >= 2  # API Gateway's 2 h lifetime
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx not installed (scripts/test.sh installs the Debian package)"
    # The compose service names do not resolve here: nginx -t on the same file with loopback.
    conf = tmp_path / "nginx.conf"
    conf.write_text(re.sub(r"gateway-\d", "127.0.0.1", text))
    (tmp_path / "logs").mkdir()
    checked = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(conf), "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


# -- kubernetes ----------------------------------------------------------------------------------


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] == "Kustomization":
                listed = sorted(doc["resources"])
                assert listed == sorted(p.name for p in K8S.glob("*.yaml") if p.name != path.name)
                continue
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_k8s_deployment_matches_the_cli_health_paths_and_service() -> None:
    docs = manifests()
    deployment = docs[("Deployment", "portway")]
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    env = {**image_env(), **{e["name"]: e["value"] for e in container["env"]}}
    args = serve_args(container["args"], env)
    assert args.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": args.port}
    assert container["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace >= int(pre_stop[1]) + args.drain_timeout + 5
    affinity = pod["spec"]["affinity"]["podAntiAffinity"]
    (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == pod["metadata"]["labels"]
    # The image's non-root user.
    assert pod["spec"]["securityContext"]["runAsUser"] == int(
        parse(ROOT / "Dockerfile")[-1].all("USER")[-1].args.split(":")[0]
    )
    # Service -> the named port; HPA -> this Deployment.
    service = docs[("Service", "portway")]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    hpa = docs[("HorizontalPodAutoscaler", "portway")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "portway"}
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    # Redis: the URL's host is the Redis Service, which selects the AOF StatefulSet.
    assert args.redis_url == "redis://redis:6379/0" and args.state_file is None
    redis = docs[("StatefulSet", "redis")]
    redis_args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"
    assert docs[("Service", "redis")]["spec"]["selector"] == redis["spec"]["template"]["metadata"]["labels"]
    assert redis["spec"]["volumeClaimTemplates"]


def test_k8s_configmap_is_the_mounted_config_and_it_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = manifests()
    pod = docs[("Deployment", "portway")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = serve_args(container["args"], {})
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (config_volume,) = [name for name, v in volumes.items() if "configMap" in v]
    assert mounts[config_volume] == str(args.config.parent)
    data = docs[("ConfigMap", volumes[config_volume]["configMap"]["name"])]["data"]
    assert args.config.name in data
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    assert main(["validate", str(tmp_path / args.config.name), "--strict"]) == 0, capsys.readouterr().err
