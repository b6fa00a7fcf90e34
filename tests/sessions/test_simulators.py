"""The in-cluster simulators (platform/venue-simulators) and `vcpl simulate` as a process."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from vcpl import paths, render
from vcpl.sessions import manifests

Doc = dict[str, Any]


@pytest.mark.no_sandbox
def test_generated_manifests_are_in_sync() -> None:
    planned = manifests.planned()
    on_disk = {p: p.read_text() for p in manifests.on_disk()}
    stale = sorted(paths.relative(p) for p in set(planned) | set(on_disk) if planned.get(p) != on_disk.get(p))
    assert not stale, f"run `make generate`: {stale}"


@pytest.fixture(scope="module")
def simulator_docs() -> list[Doc]:
    return [d for d in yaml.safe_load_all(render.build_dir(manifests.ROOT)) if d]


@pytest.mark.no_sandbox
def test_every_dev_endpoint_host_has_a_simulator_on_its_ports(simulator_docs: list[Doc]) -> None:
    """Each `<name>.venue-simulators.svc.cluster.local` of a dev gateway.json resolves to a Service
    with exactly the rendered ports, backed by a Deployment that listens on them for that host."""
    services = {d["metadata"]["name"]: d for d in simulator_docs if d["kind"] == "Service"}
    deployments = {d["metadata"]["name"]: d for d in simulator_docs if d["kind"] == "Deployment"}
    seen = 0
    for env, venue in render.overlays():
        if env != "dev":
            continue
        docs = [d for d in yaml.safe_load_all(render.build(env, venue)) if d]
        gateway = next(json.loads(d["data"]["gateway.json"]) for d in docs if d["kind"] == "ConfigMap" and "gateway.json" in d.get("data", {}))
        for service in gateway["services"]:
            for ep in service["endpoints"]:
                if not ep["host"].endswith(manifests.SUFFIX):
                    continue
                name = ep["host"].removesuffix(manifests.SUFFIX)
                assert name in services, f"dev {venue}: {ep['host']} has no Service in platform/venue-simulators"
                assert ep["port"] in [p["port"] for p in services[name]["spec"]["ports"]], (venue, ep, services[name]["spec"]["ports"])
                args = deployments[name]["spec"]["template"]["spec"]["containers"][0]["args"]
                assert args == ["simulate", venue, "dev", "--listen", ep["host"]], args
                seen += 1
    assert seen >= 10, seen


@pytest.mark.no_sandbox
def test_simulators_are_restricted_and_fenced(simulator_docs: list[Doc]) -> None:
    """Restricted namespace, non-root read-only containers, default-deny both ways, and each
    simulator admits only its own venue's dev gateway pods."""
    ns = next(d for d in simulator_docs if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny = next(d for d in simulator_docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for dep in (d for d in simulator_docs if d["kind"] == "Deployment"):
        c = dep["spec"]["template"]["spec"]["containers"][0]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] and sc["capabilities"] == {"drop": ["ALL"]} and not sc["allowPrivilegeEscalation"], dep["metadata"]["name"]
        policy = next(d for d in simulator_docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == dep["metadata"]["name"])
        venue = dep["metadata"]["labels"]["vcpl.dev/venue"]
        peers = policy["spec"]["ingress"][0]["from"]
        assert peers == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": f"venue-{venue}-dev"}},
                          "podSelector": {"matchLabels": {"app.kubernetes.io/name": "venue-gateway"}}}], policy


def test_simulate_runs_as_a_process_and_names_what_it_serves() -> None:
    """`vcpl simulate` starts the venue side from the run book in its own sandbox, lists every
    endpoint and feed line it serves, and stops cleanly."""
    proc = subprocess.run([sys.executable, "-m", "vcpl", "simulate", "nasdaq", "dev", "--seconds", "1"],
                          capture_output=True, text=True, timeout=120, cwd=paths.ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nasdaq-ouch.venue-simulators.svc.cluster.local:15000" in proc.stdout, proc.stdout
    assert "nasdaq-ouch-mirror.venue-simulators.svc.cluster.local:15000" in proc.stdout, proc.stdout
    assert "239.71.0.1:26400 on feeda" in proc.stdout and "239.71.1.1:26400 on feedb" in proc.stdout, proc.stdout
    assert "stopped" in proc.stdout


@pytest.mark.no_sandbox
def test_simulate_refuses_a_host_the_overlay_does_not_render() -> None:
    proc = subprocess.run([sys.executable, "-m", "vcpl", "simulate", "nasdaq", "dev", "--listen", "nowhere.example", "--seconds", "1"],
                          capture_output=True, text=True, timeout=120, cwd=paths.ROOT)
    assert proc.returncode != 0
    assert "--listen nowhere.example: not a host the nasdaq dev overlay renders" in proc.stderr, proc.stderr
