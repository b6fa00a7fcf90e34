"""Shared fixtures of the cluster rehearsal: ONE control plane per test session, every overlay synced once.

* `rehearsal_gate()`: skips (or, with VCPL_REHEARSAL_REQUIRED=1 as `make rehearse` sets it, fails)
  when the toolchain of `make setup-rehearsal` is missing; fails for VCPL_REHEARSAL_BACKEND=kind,
  which is not implemented (it needs a container engine).
* `control_plane` (session): a started vcpl.rehearsal.controlplane.ControlPlane.
* `synced` (session): the topology of vcpl.rehearsal.topology applied as kwok Nodes, then every
  overlay plus platform/vpn-gateway/generated/<env> server-side applied with their CRDs, every
  session opened (each StatefulSet scaled to what its session-open CronJob scales it to), and every
  StatefulSet Ready. Tests that change live objects each take an overlay nobody else asserts on.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from vcpl import paths, render, yamlio
from vcpl.rehearsal import controlplane, topology
from vcpl.rehearsal.controlplane import ControlPlane

Doc = dict[str, Any]
Key = tuple[str, str]  # (env, venue)

REQUIRED_ENV = "VCPL_REHEARSAL_REQUIRED"
BACKEND_ENV = "VCPL_REHEARSAL_BACKEND"
CRD_SOURCES = paths.ROOT / "tests" / "schemas" / "crds" / "source"
VPN_GATEWAY_GENERATED = paths.ROOT / "platform" / "vpn-gateway" / "generated"
MANAGER = "vcpl-rehearsal"
READY_TIMEOUT = 240.0
APPLY_WORKERS = 4
_SCALE = re.compile(r"^kubectl\s+scale\s+(?P<target>\S+)\s+--replicas=(?P<n>\d+)$")


# --- the gate: skip, or fail when required ---------------------------------------------------------------
def rehearsal_gate() -> None:
    backend = os.environ.get(BACKEND_ENV, "") or "local"
    if backend == "kind":
        pytest.fail("cluster rehearsal: BACKEND=kind: kind backend needs a container engine (docker or podman) and is "
                    "not implemented in this repository; run `make rehearse` without BACKEND (local processes + kwok)",
                    pytrace=False)
    if backend != "local":
        pytest.fail(f"cluster rehearsal: unknown backend {backend!r}; expected local (default) or kind", pytrace=False)
    missing = controlplane.missing_binaries()
    reason = ""
    if missing:
        reason = (f"cluster rehearsal toolchain absent ({', '.join(missing)} not in {controlplane.bin_dir()}): "
                  "run `make setup-rehearsal`")
    elif not shutil_which("openssl"):
        reason = "cluster rehearsal: the openssl CLI is not installed (it makes the throwaway CA)"
    if reason:
        if os.environ.get(REQUIRED_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRED_ENV}=1: a missing toolchain is a failure)", pytrace=False)
        pytest.skip(reason)


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


# --- pure helpers -----------------------------------------------------------------------------------------
def as_yaml(docs: list[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def group_version(doc: Doc) -> tuple[str, str]:
    api = doc["apiVersion"]
    return tuple(api.split("/", 1)) if "/" in api else ("", api)  # type: ignore[return-value]


def is_custom(group: str) -> bool:
    """Built-in groups are the core group, dot-less ones (apps, batch, policy…) and *.k8s.io."""
    return "." in group and not group.endswith(".k8s.io")


def crds_for(docs: list[Doc]) -> tuple[list[Doc], list[str]]:
    """The CRDs the documents need: the repo's sources where they cover the group/version/kind,
    else a minimal CRD that keeps unknown fields (named in the second list)."""
    sources: dict[tuple[str, str], Doc] = {}
    for path in sorted(CRD_SOURCES.rglob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd and crd.get("kind") == "CustomResourceDefinition":
                sources[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    needed: dict[tuple[str, str], set[str]] = {}
    scopes: dict[tuple[str, str], str] = {}
    for doc in docs:
        group, version = group_version(doc)
        if is_custom(group):
            needed.setdefault((group, doc["kind"]), set()).add(version)
            scopes[(group, doc["kind"])] = "Namespaced" if doc["metadata"].get("namespace") else "Cluster"
    crds, synthesized = [], []
    for (group, kind), versions in sorted(needed.items()):
        crd = sources.get((group, kind))
        served = {v["name"] for v in crd["spec"]["versions"] if v.get("served")} if crd else set()
        if crd and versions <= served:
            crds.append(crd)
            continue
        synthesized.append(f"{kind}.{group}")
        plural = kind.lower() + "s"
        crds.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scopes[(group, kind)],
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                                  for i, v in enumerate(sorted(versions))]},
        })
    return crds, synthesized


def container_command(cronjob: Doc) -> list[str]:
    c = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return [*(c.get("command") or []), *(c.get("args") or [])]


def scale_replicas(cronjob: Doc) -> int | None:
    """N when the CronJob's command is `kubectl scale <target> --replicas=N`, else None."""
    m = _SCALE.match(" ".join(container_command(cronjob)))
    return int(m["n"]) if m else None


def is_ready(pod: Doc) -> bool:
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


# --- the cluster -----------------------------------------------------------------------------------------
class Cluster:
    """A started ControlPlane plus the apply / wait / impersonation helpers the scenarios share."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.kubectl = cp.kubectl
        self.get_json = cp.get_json

    def apply(self, docs: list[Doc], manager: str = MANAGER, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Server-side apply, taking ownership of conflicting fields: what Flux's kustomize-controller
        does on every sync (it applies with force). Namespaces and CRDs go first."""
        first = [d for d in docs if d["kind"] in ("Namespace", "CustomResourceDefinition")]
        rest = [d for d in docs if d["kind"] not in ("Namespace", "CustomResourceDefinition")]
        return self.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-f", "-",
                            input=as_yaml(first + rest), check=check, timeout=600)

    def as_sa(self, namespace: str, sa: str, *args: str) -> subprocess.CompletedProcess[str]:
        """kubectl as the service account (impersonation by the system:masters admin)."""
        return self.kubectl(f"--as=system:serviceaccount:{namespace}:{sa}", *args, check=False)

    def wrapper_path(self, directory: Path, namespace: str, sa: str) -> str:
        """A PATH whose `kubectl` is this cluster's, as `sa` in `namespace`: a CronJob's command runs as is."""
        directory.mkdir(parents=True, exist_ok=True)
        script = directory / "kubectl"
        script.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in [
            str(self.cp.bin / "kubectl"), f"--kubeconfig={self.cp.kubeconfig}",
            f"--as=system:serviceaccount:{namespace}:{sa}", f"--namespace={namespace}"]) + ' "$@"\n')
        script.chmod(0o755)
        return f"{directory}:{os.environ.get('PATH', '')}"

    def pods(self, namespace: str, selector: dict[str, str]) -> list[Doc]:
        sel = ",".join(f"{k}={v}" for k, v in selector.items())
        return self.get_json("pods", "-n", namespace, "-l", sel)["items"]

    def wait(self, what: str, predicate: Any, timeout: float = READY_TIMEOUT, interval: float = 1.0,
             diagnose: Any = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                detail = diagnose() if diagnose else ""
                pytest.fail(f"{what}: not within {timeout:.0f}s\n{detail}")
            time.sleep(interval)

    def statefulsets_settled(self, namespace: str | None = None) -> tuple[bool, list[str]]:
        """(all settled, the ones not): settled = observed, every replica Ready and updated to the update revision."""
        items = self.get_json("statefulsets", *(["-n", namespace] if namespace else ["-A"]))["items"]
        bad = []
        for s in items:
            want = s["spec"].get("replicas", 1)
            st = s.get("status") or {}
            ok = (st.get("observedGeneration") == s["metadata"]["generation"] and st.get("readyReplicas", 0) == want
                  and st.get("replicas", 0) == want and st.get("updatedReplicas", 0) == want
                  and st.get("currentRevision") == st.get("updateRevision"))
            if not ok:
                bad.append(f"{s['metadata']['namespace']}/{s['metadata']['name']}: want {want} {json.dumps(st)}")
        return not bad, bad

    def wait_statefulsets(self, namespace: str | None = None, timeout: float = READY_TIMEOUT) -> None:
        self.wait(f"StatefulSets {namespace or 'in every namespace'} Ready", lambda: self.statefulsets_settled(namespace)[0],
                  timeout=timeout, diagnose=lambda: self.diagnose(namespace))

    def diagnose(self, namespace: str | None = None) -> str:
        scope = ["-n", namespace] if namespace else ["-A"]
        lines = ["\n".join(self.statefulsets_settled(namespace)[1][:20])]
        lines.append(self.kubectl("get", "pods", *scope, "-o", "wide", check=False).stdout[-4000:])
        lines.append(self.kubectl("get", "pvc", *scope, check=False).stdout[-2000:])
        lines.append(self.kubectl("get", "events", *scope, "--sort-by=.lastTimestamp", check=False).stdout[-4000:])
        for name in ("kube-scheduler", "kube-controller-manager", "kwok"):
            lines.append(f"{name} log: {self.cp.log_tail(name, 5)}")
        return "\n".join(lines)


@dataclass
class Synced:
    """The cluster with every overlay synced; the rendered documents it was synced from."""

    cluster: Cluster
    overlays: dict[Key, list[Doc]]
    platform_docs: dict[str, list[Doc]]          # env -> rendered platform/vpn-gateway/generated/<env>
    topology: topology.Topology
    synthesized_crds: list[str]
    apply_stderr: str                            # kubectl's warnings applying the overlays
    platform_apply_stderr: str = ""               # ... and the platform component
    timings: dict[str, float] = field(default_factory=dict)

    # the pure helpers, for the test modules (a `conftest` import would clash with tests/conftest.py)
    as_yaml = staticmethod(as_yaml)
    container_command = staticmethod(container_command)
    scale_replicas = staticmethod(scale_replicas)
    is_ready = staticmethod(is_ready)
    crds_for = staticmethod(crds_for)

    def doc(self, key: Key, kind: str, name: str | None = None) -> Doc:
        found = [d for d in self.overlays[key] if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
        assert len(found) == 1, f"{key}: {len(found)} {kind} {name or ''}"
        return found[0]

    def statefulset(self, key: Key) -> Doc:
        return self.doc(key, "StatefulSet")

    def namespace(self, key: Key) -> str:
        return self.doc(key, "Namespace")["metadata"]["name"]

    def cronjobs(self, key: Key) -> list[Doc]:
        return [d for d in self.overlays[key] if d["kind"] == "CronJob"]

    def session_replicas(self, key: Key) -> int:
        """Replicas while the session is open: what the session-open CronJob scales to, else spec.replicas."""
        scaled = [n for n in (scale_replicas(c) for c in self.cronjobs(key)) if n is not None]
        return max(scaled) if scaled else int(self.statefulset(key)["spec"].get("replicas", 1))

    def gateway_pods(self, key: Key) -> list[Doc]:
        sts = self.statefulset(key)
        return self.cluster.pods(self.namespace(key), sts["spec"]["selector"]["matchLabels"])

    def keys(self, env: str | None = None, *, scheduled: bool | None = None, replicas: int | None = None) -> list[Key]:
        """Overlays, sorted; `scheduled`: with (True) or without (False) scaling CronJobs."""
        out = []
        for key in sorted(self.overlays):
            if env and key[0] != env:
                continue
            has = any(scale_replicas(c) is not None for c in self.cronjobs(key))
            if scheduled is not None and has != scheduled:
                continue
            if replicas is not None and self.session_replicas(key) != replicas:
                continue
            out.append(key)
        return out


def persistent_volumes(overlays: dict[Key, list[Doc]], replicas: dict[Key, int], spare: int = 2) -> list[Doc]:
    """One PersistentVolume per claim the StatefulSets will make, plus spares per size: no
    provisioner runs here (hostPath, never mounted: kwok runs no kubelet)."""
    wanted: dict[tuple[str, str, str], int] = {}
    for key, docs in overlays.items():
        for sts in (d for d in docs if d["kind"] == "StatefulSet"):
            for tmpl in sts["spec"].get("volumeClaimTemplates") or []:
                spec = tmpl["spec"]
                size_key = (spec["resources"]["requests"]["storage"], ",".join(spec["accessModes"]), spec.get("storageClassName") or "")
                wanted[size_key] = wanted.get(size_key, 0) + replicas[key]
    pvs = []
    for (size, modes, sc), count in sorted(wanted.items()):
        for i in range(count + spare):
            name = f"rehearsal-{size.lower()}-{sc or 'none'}-{i}"
            pvs.append({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                        "spec": {"capacity": {"storage": size}, "accessModes": modes.split(","),
                                 "storageClassName": sc, "persistentVolumeReclaimPolicy": "Retain",
                                 "hostPath": {"path": f"/tmp/vcpl-rehearsal-pv/{name}"}}})
    return pvs


# --- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def control_plane() -> Iterator[Cluster]:
    rehearsal_gate()
    t0 = time.monotonic()
    with ControlPlane() as cp:
        cluster = Cluster(cp)
        cluster.started_in = time.monotonic() - t0  # type: ignore[attr-defined]
        yield cluster


@pytest.fixture(scope="session")
def synced(control_plane: Cluster, rendered_overlays: dict[Key, list[Doc]]) -> Iterator[Synced]:
    """This applies what the GitOps engine would apply (the rendered overlays and the VPN-gateway
    platform component, server-side, forcing ownership like Flux's kustomize-controller). A real
    Flux sync (source-controller fetching git, kustomize-controller's own build) is separate work."""
    cluster = control_plane
    timings = {"control plane ready": getattr(cluster, "started_in", 0.0)}
    t = time.monotonic()
    overlays = {key: [d for d in docs if d] for key, docs in rendered_overlays.items()}
    platform_docs = {env.name: yamlio.load_all(render.build_dir(env))
                     for env in sorted(VPN_GATEWAY_GENERATED.iterdir()) if (env / "kustomization.yaml").exists()}
    all_docs = [d for docs in overlays.values() for d in docs] + [d for docs in platform_docs.values() for d in docs]
    topo = topology.build(all_docs)
    if topo.unplaceable:
        pytest.fail("the rehearsal topology cannot place: " + "; ".join(topo.unplaceable))

    cluster.apply(topo.nodes)
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=90s", "node", "-l",
                    f"{controlplane.KWOK_LABEL[0]}={controlplane.KWOK_LABEL[1]}", timeout=120)
    crds, synthesized = crds_for(all_docs)
    cluster.apply(crds)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    *[f"crd/{c['metadata']['name']}" for c in crds], timeout=90)
    timings["nodes+crds"] = time.monotonic() - t

    probe = Synced(cluster, overlays, platform_docs, topo, synthesized, "")
    replicas = {key: probe.session_replicas(key) for key in overlays}
    cluster.apply(persistent_volumes(overlays, replicas))

    t = time.monotonic()
    overlay_docs = [d for docs in overlays.values() for d in docs]
    # Namespaces first (one call), then the overlays in parallel kubectl processes: one process
    # applies object after object, and ~1,200 objects in one would take about a minute.
    cluster.apply([d for d in overlay_docs if d["kind"] == "Namespace"])
    keys = sorted(overlays)
    batches = [keys[i::APPLY_WORKERS] for i in range(APPLY_WORKERS)]
    with concurrent.futures.ThreadPoolExecutor(APPLY_WORKERS) as pool:
        results = list(pool.map(lambda batch: cluster.apply([d for k in batch for d in overlays[k]]), batches))
    stderr = "".join(r.stderr for r in results)
    platform_stderr = cluster.apply([d for docs in platform_docs.values() for d in docs]).stderr
    timings["apply all"] = time.monotonic() - t
    # Open every session: what each overlay's session-open CronJob does (`kubectl scale ... --replicas=N`).
    # Run by the admin here; test_scenarios runs the CronJobs' own commands as their service account.
    t = time.monotonic()
    for key in sorted(overlays):
        want = replicas[key]
        if want != int(probe.statefulset(key)["spec"].get("replicas", 1)):
            sts = probe.statefulset(key)
            cluster.kubectl("scale", f"statefulset/{sts['metadata']['name']}", f"--replicas={want}",
                            "-n", probe.namespace(key))
    cluster.wait_statefulsets()
    timings["sessions open, all Ready"] = time.monotonic() - t
    s = Synced(cluster, overlays, platform_docs, topo, synthesized, stderr, platform_stderr, timings)
    yield s
    print(f"\ncluster rehearsal timings (s): {json.dumps({k: round(v, 1) for k, v in s.timings.items()})}")
