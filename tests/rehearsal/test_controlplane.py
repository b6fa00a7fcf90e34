"""Cluster rehearsal: the rendered prod overlay of one venue, applied to a real control plane.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as local processes on
127.0.0.1 (vcpl.rehearsal.controlplane); kwok simulates the nodes and the pods' lifecycle, so the
StatefulSet's pods are scheduled for real (affinity, anti-affinity, resources, PVC binding,
Pod Security admission) and become Running without any container engine.

The control plane and the Flux sync of every overlay are the session fixtures of conftest.py (`synced`),
shared with test_scenarios.py. The toolchain comes from `make setup-rehearsal`
(.tools/rehearsal/bin, or VCPL_REHEARSAL_BIN); without it these tests are SKIPPED, never passed
(FAILED under VCPL_REHEARSAL_REQUIRED=1, as `make rehearse` runs them).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vcpl.rehearsal import controlplane
from vcpl.rehearsal.controlplane import ControlPlane, ToolchainMissing

KEY = ("prod", "cme")  # (env, venue): read-only here; test_scenarios mutates other overlays


def test_prod_overlay_applies_server_side(synced: Any) -> None:
    """Every object of the rendered overlay is accepted by the API server (schemas, admission),
    its own Namespace included, and was applied by the GitOps engine: Flux's kustomize-controller
    owns its fields and labels it with the Kustomization that synced it (gitops/flux/prod)."""
    docs = synced.overlays[KEY]
    live = json.loads(synced.cluster.kubectl("get", "-f", "-", "-o", "json", "--show-managed-fields",
                                             input=synced.as_yaml(docs)).stdout)
    items = live.get("items", [live])
    assert len(items) == len(docs)
    for item in items:
        managers = {f.get("manager") for f in item["metadata"].get("managedFields", [])}
        assert "kustomize-controller" in managers, f"{item['kind']}/{item['metadata']['name']}: managers {managers}"
        assert item["metadata"]["labels"].get("kustomize.toolkit.fluxcd.io/name") == f"{KEY[1]}-{KEY[0]}", item["metadata"]
    assert "would violate PodSecurity" not in synced.apply_stderr, synced.apply_stderr


def test_statefulset_pods_run_on_kwok_nodes(synced: Any) -> None:
    """The scheduler places every replica (node affinity, anti-affinity, resources, PVC) on a
    kwok node, and kwok drives it to Running and Ready under the restricted Pod Security level
    that the overlay's own Namespace enforces."""
    pods = [p for p in synced.gateway_pods(KEY) if synced.is_ready(p)]
    assert len(pods) == synced.session_replicas(KEY) >= 1
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert len(nodes) == len(pods), "required pod anti-affinity on hostname: one replica per node"
    for node in nodes:
        meta = synced.cluster.get_json("node", node)["metadata"]
        assert meta["labels"].get(controlplane.KWOK_LABEL[0]) == controlplane.KWOK_LABEL[1]
    ns = synced.cluster.get_json("namespace", synced.namespace(KEY))
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespace_refuses_a_pod_below_restricted(synced: Any) -> None:
    """Pod Security admission is live: the same namespace refuses a pod with no security context."""
    ns = synced.namespace(KEY)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unrestricted", "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]}}
    proc = synced.cluster.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=synced.as_yaml([pod]), check=False)
    assert proc.returncode != 0
    # The overlay pins enforce-version (v1.33); "latest" is accepted too.
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
