"""Cluster rehearsal: the rendered prod overlay of one venue, applied to a real control plane.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as local processes on
127.0.0.1 (vcpl.rehearsal.controlplane); kwok simulates the nodes and the pods' lifecycle, so the
StatefulSet's pods are scheduled for real (affinity, anti-affinity, resources, PVC binding,
Pod Security admission) and become Running without any container engine.

The toolchain comes from `make setup-rehearsal` (.tools/rehearsal/bin, or VCPL_REHEARSAL_BIN);
without it these tests are SKIPPED, never passed.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from vcpl import paths
from vcpl.rehearsal import controlplane
from vcpl.rehearsal.controlplane import ControlPlane, ToolchainMissing

VENUE, ENV = "cme", "prod"
CRD_SOURCES = paths.ROOT / "tests" / "schemas" / "crds" / "source"
POD_TIMEOUT = 90.0

_missing = controlplane.missing_binaries()
needs_toolchain = pytest.mark.skipif(
    bool(_missing),
    reason=f"cluster rehearsal toolchain absent ({', '.join(_missing)} not in {controlplane.bin_dir()}): "
           "run `make setup-rehearsal`",
)

Doc = dict[str, Any]


# --- pure helpers -------------------------------------------------------------------------------------
def render_overlay(venue: str, env: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "vcpl", "build", venue, env],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=paths.ROOT)
    if proc.returncode != 0:
        pytest.fail(f"vcpl build {venue} {env}: {proc.stderr.strip()}")
    return proc.stdout


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


def required_node_labels(pod_spec: Doc) -> dict[str, str]:
    """Labels a node needs for the pod's nodeSelector and required node affinity (In / Exists)."""
    labels = dict(pod_spec.get("nodeSelector") or {})
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
    terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    if terms:
        for expr in terms[0].get("matchExpressions") or []:
            if expr["operator"] == "In":
                labels[expr["key"]] = expr["values"][0]
            elif expr["operator"] == "Exists":
                labels[expr["key"]] = "true"
    return labels


def as_yaml(docs: list[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


# --- the rehearsal --------------------------------------------------------------------------------------
class Rehearsal:
    def __init__(self, cp: ControlPlane, docs: list[Doc]) -> None:
        self.cp = cp
        self.docs = docs
        self.sts = next(d for d in docs if d["kind"] == "StatefulSet")
        self.namespace = self.sts["metadata"]["namespace"]
        self.replicas = int(self.sts["spec"].get("replicas", 1))
        self.node_names = [f"kwok-node-{i}" for i in range(max(self.replicas, 1))]
        self.synthesized_crds: list[str] = []
        self.apply_stderr = ""
        self.timings: dict[str, float] = {}

    def apply(self, docs: list[Doc], manager: str = "vcpl-rehearsal") -> subprocess.CompletedProcess[str]:
        return self.cp.kubectl("apply", "--server-side", f"--field-manager={manager}", "-f", "-", input=as_yaml(docs))

    def prepare_and_apply(self) -> None:
        t0 = time.monotonic()
        crds, self.synthesized_crds = crds_for(self.docs)
        self.apply(crds)
        self.cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        *[f"crd/{c['metadata']['name']}" for c in crds])
        self.timings["crds"] = time.monotonic() - t0

        pod_spec = self.sts["spec"]["template"]["spec"]
        labels = required_node_labels(pod_spec)
        nodes = [controlplane.kwok_node(name, {**labels, "topology.kubernetes.io/zone": f"zone-{i % 2}"})
                 for i, name in enumerate(self.node_names)]
        self.apply(nodes)
        self.cp.kubectl("wait", "--for=condition=Ready", "--timeout=60s", *[f"node/{n}" for n in self.node_names])

        # No storage provisioner runs here: one pre-made PersistentVolume per claim the StatefulSet
        # will make (hostPath, never mounted: kwok runs no kubelet).
        pvs = []
        for tmpl in self.sts["spec"].get("volumeClaimTemplates") or []:
            for i in range(self.replicas):
                spec = tmpl["spec"]
                pvs.append({"apiVersion": "v1", "kind": "PersistentVolume",
                            "metadata": {"name": f"rehearsal-{tmpl['metadata']['name']}-{i}"},
                            "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                                     "accessModes": spec["accessModes"],
                                     "storageClassName": spec.get("storageClassName", ""),
                                     "persistentVolumeReclaimPolicy": "Retain",
                                     "hostPath": {"path": f"/tmp/vcpl-rehearsal-pv/{i}"}}})
        if pvs:
            self.apply(pvs)

        namespaces = sorted({d["metadata"]["namespace"] for d in self.docs if d["metadata"].get("namespace")})
        self.apply([{"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                                         "pod-security.kubernetes.io/enforce-version": "latest"}}}
                    for ns in namespaces])
        self.timings["nodes+namespace"] = time.monotonic() - t0 - self.timings["crds"]

        t1 = time.monotonic()
        self.apply_stderr = self.apply(self.docs).stderr
        self.timings["apply"] = time.monotonic() - t1

    def pods(self) -> list[Doc]:
        selector = ",".join(f"{k}={v}" for k, v in self.sts["spec"]["selector"]["matchLabels"].items())
        return self.cp.get_json("pods", "-n", self.namespace, "-l", selector)["items"]

    def wait_running(self, timeout: float = POD_TIMEOUT) -> list[Doc]:
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            pods = self.pods()
            running = [p for p in pods if p["status"].get("phase") == "Running"
                       and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
            if len(running) >= self.replicas:
                self.timings["pods running"] = time.monotonic() - t0
                return running
            if time.monotonic() > deadline:
                pytest.fail(f"StatefulSet pods not Running within {timeout:.0f}s:\n{self.diagnose(pods)}")
            time.sleep(1)

    def diagnose(self, pods: list[Doc]) -> str:
        lines = [f"pod {p['metadata']['name']}: phase={p['status'].get('phase')} node={p['spec'].get('nodeName')} "
                 f"conditions={json.dumps(p['status'].get('conditions'))}" for p in pods]
        sts = self.cp.get_json("statefulset", "-n", self.namespace, self.sts["metadata"]["name"])
        lines.append(f"statefulset status: {json.dumps(sts.get('status'))}")
        lines.append(self.cp.kubectl("get", "pvc,pv", "-A", check=False).stdout)
        lines.append(self.cp.kubectl("get", "events", "-n", self.namespace, "--sort-by=.lastTimestamp", check=False).stdout[-3000:])
        for name in ("kube-scheduler", "kwok"):
            lines.append(f"{name} log: {self.cp.log_tail(name, 5)}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def rehearsal() -> Iterator[Rehearsal]:
    docs = [d for d in yaml.safe_load_all(render_overlay(VENUE, ENV)) if d]
    t0 = time.monotonic()
    with ControlPlane() as cp:
        r = Rehearsal(cp, docs)
        r.timings["control plane ready"] = time.monotonic() - t0
        r.prepare_and_apply()
        yield r
    print(f"\ncluster rehearsal timings (s): {json.dumps({k: round(v, 1) for k, v in r.timings.items()})}")


# --- tests ------------------------------------------------------------------------------------------------
@needs_toolchain
def test_prod_overlay_applies_server_side(rehearsal: Rehearsal) -> None:
    """Every object of the rendered overlay is accepted by the API server (schemas, admission)."""
    live = json.loads(rehearsal.cp.kubectl("get", "-f", "-", "-o", "json", "--show-managed-fields", input=as_yaml(rehearsal.docs)).stdout)
    items = live.get("items", [live])
    assert len(items) == len(rehearsal.docs)
    for item in items:
        managers = {f.get("manager") for f in item["metadata"].get("managedFields", [])}
        assert "vcpl-rehearsal" in managers, f"{item['kind']}/{item['metadata']['name']}: managers {managers}"
    assert "would violate PodSecurity" not in rehearsal.apply_stderr, rehearsal.apply_stderr


@needs_toolchain
def test_statefulset_pods_run_on_kwok_nodes(rehearsal: Rehearsal) -> None:
    """The scheduler places every replica (node affinity, anti-affinity, resources, PVC) on a
    kwok node, and kwok drives it to Running and Ready under the restricted Pod Security level."""
    pods = rehearsal.wait_running()
    assert len(pods) == rehearsal.replicas
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert nodes <= set(rehearsal.node_names), nodes
    assert len(nodes) == len(pods), "required pod anti-affinity on hostname: one replica per node"
    for node in nodes:
        meta = rehearsal.cp.get_json("node", node)["metadata"]
        assert meta["labels"].get(controlplane.KWOK_LABEL[0]) == controlplane.KWOK_LABEL[1]
    ns = rehearsal.cp.get_json("namespace", rehearsal.namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@needs_toolchain
def test_namespace_refuses_a_pod_below_restricted(rehearsal: Rehearsal) -> None:
    """Pod Security admission is live: the same namespace refuses a pod with no security context."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unrestricted", "namespace": rehearsal.namespace},
           "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]}}
    proc = rehearsal.cp.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=as_yaml([pod]), check=False)
    assert proc.returncode != 0
    # enforce-version "latest" is reported as "latest" or as the server's own minor ("v1.33").
    assert re.search(r'violates PodSecurity "restricted:(latest|v1\.\d+)"', proc.stderr), proc.stderr


def test_missing_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the toolchain the launcher names what is missing and how to install it (no toolchain needed)."""
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    (tmp_path / "etcd").chmod(0o755)
    monkeypatch.setenv(controlplane.BIN_ENV, str(tmp_path))
    with pytest.raises(ToolchainMissing) as err:
        with ControlPlane():
            pass
    message = str(err.value)
    assert "kube-apiserver" in message and "etcd," not in message
    assert str(tmp_path) in message and "make setup-rehearsal" in message
