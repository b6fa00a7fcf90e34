"""Cluster rehearsal scenarios (issue 11): every overlay synced to one real control plane.

The control plane (etcd, kube-apiserver with RBAC and Pod Security admission, controller manager,
scheduler) runs as local processes; kwok simulates the nodes and drives pods to Running/Ready
WITHOUT running any container. So: scheduling, admission, RBAC, the Eviction API with PDBs,
StatefulSet rollouts and PVC binding are real; the gateways' own behaviour, probes, the kubectl
inside the CronJobs and the network are not exercised. Each test's docstring says what it proves.
Fixtures: tests/rehearsal/conftest.py (one control plane for the whole session).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcpl import paths, render, yamlio
from vcpl.rehearsal import topology
from vcpl.rehearsal.flux import KUSTOMIZATION
from vcpl.sessions import manifests as simulators

Doc = dict[str, Any]


# --- 1 + 2: topology and sync -----------------------------------------------------------------------------
def test_every_overlay_syncs(synced: Any) -> None:
    """All overlays and the VPN-gateway platform component are accepted by the API server
    (schemas of built-ins and CRDs, restricted Pod Security of every venue namespace); every
    StatefulSet has all its replicas Ready (scheduled on kwok nodes with PVCs bound); every CronJob
    exists; the strongSwan DaemonSet runs exactly on the VPN-gateway nodes."""
    c = synced.cluster
    assert set(synced.overlays) == set(render.overlays()), sorted(synced.overlays)
    assert "would violate PodSecurity" not in synced.apply_stderr, synced.apply_stderr
    # The VPN-gateway namespace enforces privileged and WARNS at restricted, by design
    # (platform/vpn-gateway/base/namespace.vcpl-vpn-gateway.yaml): the warning must be there.
    assert 'would violate PodSecurity "restricted' in synced.platform_apply_stderr, synced.platform_apply_stderr
    live_sts = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in c.get_json("statefulsets", "-A")["items"]}
    for key in synced.overlays:
        sts = synced.statefulset(key)
        live = live_sts.get((synced.namespace(key), sts["metadata"]["name"]))
        assert live, f"{key}: StatefulSet missing"
        want = synced.session_replicas(key)
        assert live["spec"]["replicas"] == want and live["status"].get("readyReplicas") == want, (key, live["status"])
    rendered_cj = {(d["metadata"]["namespace"], d["metadata"]["name"]) for docs in synced.overlays.values()
                   for d in docs if d["kind"] == "CronJob"}
    live_cj = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in c.get_json("cronjobs", "-A")["items"]}
    assert rendered_cj and rendered_cj <= live_cj, sorted(rendered_cj - live_cj)

    vpn_nodes = set(synced.topology.names("vpn-gateway"))
    assert vpn_nodes
    daemonsets = [d for docs in synced.platform_docs.values() for d in docs if d["kind"] == "DaemonSet"]
    assert daemonsets, "platform/vpn-gateway renders no DaemonSet"
    for ds in daemonsets:
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        live = c.get_json("daemonset", "-n", ns, name)
        assert live["status"].get("desiredNumberScheduled") == len(vpn_nodes), live["status"]
        c.wait(f"DaemonSet {ns}/{name} ready", lambda: c.get_json("daemonset", "-n", ns, name)["status"].get("numberReady") == len(vpn_nodes), timeout=60)
        pods = c.pods(ns, ds["spec"]["selector"]["matchLabels"])
        assert {p["spec"]["nodeName"] for p in pods} == vpn_nodes, [(p["metadata"]["name"], p["spec"].get("nodeName")) for p in pods]


# --- 3: scheduling ----------------------------------------------------------------------------------------
def test_hot_standby_pairs_spread_over_nodes_and_zones(synced: Any) -> None:
    """For every prod overlay whose session runs 2 gateway replicas (hot standby), the two pods are
    on different nodes AND different zones, and every gateway pod of every overlay sits on a node
    that carries the labels its rendered pod template requires (e.g. the PTP label). Real
    kube-scheduler decisions over the topology's labels; the zone spread is the overlays' own
    (ScheduleAnyway) constraint, so a failure here means the scheduler could put both in one zone."""
    c = synced.cluster
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in c.get_json("nodes")["items"]}
    pairs = synced.keys("prod", replicas=2)
    assert pairs, "no prod overlay runs 2 replicas: nothing to check"
    requiring = 0
    for key in synced.keys():
        spec = synced.statefulset(key)["spec"]["template"]["spec"]
        needed, _ = topology.node_requirements(spec)
        requiring += bool(needed) and key in pairs
        pods = synced.gateway_pods(key)
        assert len(pods) == synced.session_replicas(key), (key, [p["metadata"]["name"] for p in pods])
        for pod in pods:
            labels = nodes[pod["spec"]["nodeName"]]
            for label, values in needed.items():
                assert label in labels and (not values or labels[label] in values), (key, pod["spec"]["nodeName"], label)
        if key in pairs:
            placed = [pod["spec"]["nodeName"] for pod in pods]
            zones = [nodes[n][topology.ZONE_KEY] for n in placed]
            assert len(set(placed)) == 2, f"{key}: both replicas on {placed}"
            assert len(set(zones)) == 2, f"{key}: both replicas in zone {zones} ({placed})"
    assert requiring, "no hot-standby prod overlay requires node labels: the PTP check proved nothing"


# --- 4: session scheduler RBAC ----------------------------------------------------------------------------
def _forbidden(proc: Any) -> bool:
    return proc.returncode != 0 and "forbidden" in proc.stderr.lower()


def test_session_scheduler_rbac_by_impersonation(synced: Any, tmp_path: Any) -> None:
    """Each CronJob's own command (read from the rendered CronJob, run by /bin/sh with a `kubectl`
    that impersonates the CronJob's service account) succeeds: close scales to 0, the reset request
    patches the pod template, open scales back up and the pods come back Ready. Calls outside the
    Role are refused by the real RBAC authorizer: get secrets, delete the StatefulSet, exec into the
    gateway pod, scale another venue's StatefulSet. (The kubectl image of the CronJob is not run.)"""
    c = synced.cluster
    key = synced.keys("dev", scheduled=True)[0]
    ns = synced.namespace(key)
    sts = synced.statefulset(key)["metadata"]["name"]
    cronjobs = synced.cronjobs(key)
    sas = {cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] for cj in cronjobs}
    assert len(sas) == 1, sas
    sa = sas.pop()
    path = c.wrapper_path(tmp_path / "bin", ns, sa)
    scaling = sorted((cj for cj in cronjobs if synced.scale_replicas(cj) is not None), key=synced.scale_replicas)
    others = [cj for cj in cronjobs if synced.scale_replicas(cj) is None]
    assert len(scaling) >= 2 and others, [cj["metadata"]["name"] for cj in cronjobs]
    close, open_ = scaling[0], scaling[-1]

    def run(cj: Doc) -> None:
        cmd = synced.container_command(cj)
        proc = subprocess.run(cmd, env={**os.environ, "PATH": path}, text=True, capture_output=True, timeout=60)
        assert proc.returncode == 0, f"{cj['metadata']['name']}: {cmd}: {proc.stderr}"

    run(close)
    c.wait_statefulsets(ns, timeout=60)
    assert c.get_json("statefulset", "-n", ns, sts)["spec"]["replicas"] == synced.scale_replicas(close)
    assert not synced.gateway_pods(key) or synced.scale_replicas(close) > 0
    before = (c.get_json("statefulset", "-n", ns, sts)["spec"]["template"]["metadata"].get("annotations") or {})
    for cj in others:
        run(cj)
    after = (c.get_json("statefulset", "-n", ns, sts)["spec"]["template"]["metadata"].get("annotations") or {})
    assert after != before, f"{[cj['metadata']['name'] for cj in others]} changed nothing in the pod template"
    run(open_)
    c.wait_statefulsets(ns, timeout=120)
    assert len(synced.gateway_pods(key)) == synced.scale_replicas(open_)

    pod = synced.gateway_pods(key)[0]["metadata"]["name"]
    other_ns = synced.namespace(next(k for k in synced.keys(scheduled=True) if k != key))
    refused = {
        "get secrets": ("get", "secrets", "-n", ns),
        "delete the StatefulSet": ("delete", f"statefulset/{sts}", "-n", ns, "--dry-run=server"),
        "exec into the gateway": ("exec", "-n", ns, pod, "--", "true"),
        "scale another venue": ("scale", f"statefulset/{sts}", "--replicas=1", "-n", other_ns, "--dry-run=server"),
    }
    for what, args in refused.items():
        proc = c.as_sa(ns, sa, *args)
        assert _forbidden(proc), f"{what} as {ns}:{sa} was not refused: rc={proc.returncode} {proc.stdout} {proc.stderr}"
    for verb, resource, where in (("get", "secrets", ns), ("delete", f"statefulsets/{sts}", ns),
                                  ("create", "pods/exec", ns), ("patch", f"statefulsets/{sts}", other_ns)):
        answer = c.as_sa(ns, sa, "auth", "can-i", verb, resource, "-n", where).stdout.strip()
        assert answer == "no", f"can-i {verb} {resource} -n {where}: {answer}"
    assert c.as_sa(ns, sa, "auth", "can-i", "patch", f"statefulsets/{sts}", "--subresource=scale", "-n", ns).stdout.strip() == "yes"


def test_open_cronjob_creates_a_job(synced: Any) -> None:
    """`kubectl create job --from=cronjob/<open>` makes a Job whose pod is admitted by the
    restricted Pod Security level of the venue namespace (enforced at pod creation, not on the
    CronJob), runs as the scheduler's service account and is scheduled. kwok runs no container:
    the pod's `kubectl scale` is NOT executed (kwok reports Running/Succeeded by itself); the
    impersonation test above shows that command is authorized."""
    c = synced.cluster
    key = synced.keys("dev", scheduled=True)[1]
    ns = synced.namespace(key)
    open_ = max((cj for cj in synced.cronjobs(key) if synced.scale_replicas(cj) is not None), key=synced.scale_replicas)
    job = "rehearsal-open"
    c.kubectl("create", "job", job, f"--from=cronjob/{open_['metadata']['name']}", "-n", ns)
    pods = c.wait(f"pod of Job {ns}/{job} scheduled",
                  lambda: [p for p in c.pods(ns, {"job-name": job}) if p["spec"].get("nodeName")], timeout=60)
    pod = pods[0]
    want = open_["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["spec"]["serviceAccountName"] == want["serviceAccountName"]
    assert pod["spec"]["containers"][0]["command"] == want["containers"][0]["command"]
    c.wait(f"pod of Job {ns}/{job} Running or Succeeded",
           lambda: c.get_json("pod", "-n", ns, pod["metadata"]["name"])["status"].get("phase") in ("Running", "Succeeded"), timeout=60)
    assert c.get_json("job", "-n", ns, job)["metadata"]["ownerReferences"][0]["name"] == open_["metadata"]["name"]


# --- 5: disruption budget -----------------------------------------------------------------------------------
def _resolve(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)  # the PDB controller rounds up
    return int(value)


def pdb_allows(pdb_spec: Doc, expected: int, healthy: int) -> int:
    if "maxUnavailable" in pdb_spec:
        desired = expected - _resolve(pdb_spec["maxUnavailable"], expected)
    else:
        desired = _resolve(pdb_spec.get("minAvailable", 0), expected)
    return max(0, healthy - max(desired, 0))


def evict(c: Any, ns: str, pod: str, tmp: Any, dry_run: bool = False) -> Any:
    body: Doc = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}}
    if dry_run:
        body["deleteOptions"] = {"dryRun": ["All"]}
    f = tmp / f"evict-{pod}.json"
    f.write_text(json.dumps(body))
    return c.kubectl("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction", "-f", str(f), check=False)


def _refused_by_pdb(proc: Any) -> bool:
    return proc.returncode != 0 and "disruption budget" in proc.stderr


def _pdb_status(c: Any, ns: str, name: str) -> Doc:
    return c.get_json("pdb", "-n", ns, name).get("status") or {}


def test_eviction_api_agrees_with_every_prod_pdb(synced: Any, tmp_path: Any) -> None:
    """For every prod overlay, a dry-run eviction of one gateway pod is allowed exactly when the
    rendered PDB's arithmetic allows a disruption with the live replica count. NOTE: with
    maxUnavailable: 1 a single-replica overlay's only pod IS evictable (a drain takes it down)."""
    c = synced.cluster
    single = []
    for key in synced.keys("prod"):
        ns = synced.namespace(key)
        pdb = synced.doc(key, "PodDisruptionBudget")
        expected = synced.session_replicas(key)
        st = c.wait(f"PDB {ns} observed", lambda: (s := _pdb_status(c, ns, pdb["metadata"]["name"])).get("currentHealthy") == expected
                    and s.get("expectedPods") == expected and s, timeout=60)
        allows = pdb_allows(pdb["spec"], expected, expected)
        assert st["disruptionsAllowed"] == allows, (key, st)
        pod = synced.gateway_pods(key)[0]["metadata"]["name"]
        proc = evict(c, ns, pod, tmp_path, dry_run=True)
        assert (proc.returncode == 0) == (allows > 0), (key, allows, proc.stderr)
        if allows and expected == 1:
            single.append(key[1])
    print(f"\nprod overlays whose only gateway pod the PDB lets the Eviction API evict: {single}")


def test_pdb_protects_the_last_available_gateway(synced: Any, tmp_path: Any) -> None:
    """A prod hot-standby pair: with one pod made unready (its Ready condition set False through the
    status subresource, as a failing readiness probe would; kwok leaves it so), the Eviction API
    refuses to evict the last available pod (HTTP 429, PDB). The unready pod itself is evictable
    only if the PDB says unhealthyPodEvictionPolicy: AlwaysAllow. With both Ready, evicting one is
    allowed when the PDB permits a disruption, and the StatefulSet brings it back."""
    c = synced.cluster
    key = synced.keys("prod", replicas=2)[-1]
    ns = synced.namespace(key)
    pdb = synced.doc(key, "PodDisruptionBudget")
    name = pdb["metadata"]["name"]
    sts = synced.statefulset(key)["metadata"]["name"]
    standby, primary = f"{sts}-1", f"{sts}-0"
    assert pdb_allows(pdb["spec"], 2, 1) == 0, f"{key}: the PDB itself allows evicting the last pod: {pdb['spec']}"
    c.wait("PDB sees both Ready", lambda: _pdb_status(c, ns, name).get("currentHealthy") == 2, timeout=60)

    c.kubectl("patch", "pod", primary, "-n", ns, "--subresource=status", "--type=strategic",
              "-p", json.dumps({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "RehearsalUnready"}]}}))
    c.wait("PDB sees one Ready", lambda: (s := _pdb_status(c, ns, name)).get("currentHealthy") == 1 and s.get("disruptionsAllowed") == 0, timeout=60)
    proc = evict(c, ns, standby, tmp_path)
    assert _refused_by_pdb(proc), f"evicting the last available pod {standby}: rc={proc.returncode} {proc.stderr}"
    proc = evict(c, ns, primary, tmp_path)
    if pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        assert proc.returncode == 0, f"unready {primary} not evictable despite AlwaysAllow: {proc.stderr}"
    else:
        assert _refused_by_pdb(proc), proc.stderr
        c.kubectl("delete", "pod", primary, "-n", ns, "--wait=false")
    c.wait_statefulsets(ns, timeout=120)
    allows = pdb_allows(pdb["spec"], 2, 2)
    assert allows >= 1
    c.wait("PDB allows a disruption again", lambda: _pdb_status(c, ns, name).get("disruptionsAllowed") == allows, timeout=150)
    proc = evict(c, ns, standby, tmp_path)
    assert proc.returncode == 0, f"evicting one of two Ready pods: {proc.stderr}"
    c.wait_statefulsets(ns, timeout=120)


# --- 6-8: promotion, drift, rollout (a scratch copy of the repository) -------------------------------------
IGNORED = shutil.ignore_patterns(".git", ".venv", ".tools", "build", "__pycache__", ".pytest_cache", ".mypy_cache")
SERVER_FIELDS = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository, as tests/test_promote.py makes: the real overlays are never touched."""
    copy = tmp_path_factory.mktemp("rehearsal") / "repo"
    shutil.copytree(paths.ROOT, copy, ignore=IGNORED)
    return copy


def vcpl(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo / "scripts"),
           "PATH": f"{paths.ROOT / '.tools' / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "vcpl", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def render_in(repo: Path, venue: str, env: str) -> list[Doc]:
    proc = vcpl(repo, "build", venue, env)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def live_objects(synced: Any, docs: list[Doc]) -> dict[tuple[str, str, str], Doc]:
    """The live objects of `docs`, without status and the fields the API server keeps for itself."""
    live = json.loads(synced.cluster.kubectl("get", "-f", "-", "-o", "json", input=synced.as_yaml(docs)).stdout)
    out = {}
    for item in live.get("items", [live]):
        meta = item["metadata"]
        for f in SERVER_FIELDS:
            meta.pop(f, None)
        item.pop("status", None)
        out[(item["kind"], meta.get("namespace", ""), meta["name"])] = item
    return out


def changed_paths(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b)) for p in changed_paths(a.get(k), b.get(k), f"{path}.{k}" if path else k)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        named = all(isinstance(x, dict) and "name" in x for x in a + b)
        return [p for i, (x, y) in enumerate(zip(a, b))
                for p in changed_paths(x, y, f"{path}[{x['name'] if named else i}]")]
    return [] if a == b else [path]


def test_promotion_changes_exactly_the_gateway_image(synced: Any, scratch: Path) -> None:
    """`vcpl promote <venue> cert prod` in a scratch repo (cert given a new image first, as
    tests/test_promote.py does), committed and synced by Flux: across every live object
    of the overlay exactly one field changes, the gateway StatefulSet's container image, and it
    becomes the image the promotion evidence records. The StatefulSet rolls onto it (kwok: no image
    is pulled)."""
    c = synced.cluster
    key = synced.keys("prod", scheduled=False)[0]
    venue = key[1]
    ns = synced.namespace(key)
    cert = scratch / "overlays" / "cert" / venue / "kustomization.yaml"
    data = yaml.safe_load(cert.read_text())
    data["images"][0].update(newTag="9.9.9-rehearsal", digest="sha256:" + "d" * 64)
    cert.write_text(yaml.safe_dump(data, sort_keys=False))

    before = live_objects(synced, synced.overlays[key])
    proc = vcpl(scratch, "promote", venue, "cert", "prod")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evidence = sorted((scratch / "evidence" / venue).glob("*-cert-to-prod.json"))
    promoted = json.loads(evidence[-1].read_text())["promoted"]["images"]["after"]
    assert len(promoted) == 1, promoted
    image = next(iter(promoted.values()))
    want = f"{image['newName']}:{image['newTag']}@{image['digest']}"

    docs = render_in(scratch, venue, "prod")
    synced.sync_from(scratch, f"promote {venue} cert to prod", [f"{venue}-prod"])
    c.wait_statefulsets(ns, timeout=120)
    after = live_objects(synced, docs)
    assert set(after) == set(before), set(after) ^ set(before)
    sts = synced.statefulset(key)["metadata"]["name"]
    container = synced.statefulset(key)["spec"]["template"]["spec"]["containers"][0]["name"]
    changes = {k: changed_paths(before[k], after[k]) for k in before if changed_paths(before[k], after[k])}
    assert changes == {("StatefulSet", ns, sts): [f"spec.template.spec.containers[{container}].image"]}, changes
    assert after[("StatefulSet", ns, sts)]["spec"]["template"]["spec"]["containers"][0]["image"] == want
    assert all(p["spec"]["containers"][0]["image"] == want for p in synced.gateway_pods(key))


def run_drift(synced: Any, venue: str, env: str) -> subprocess.CompletedProcess[str]:
    """`vcpl drift` selects the cluster by kubeconfig context (--context, default the current one)
    of the kubeconfig kubectl reads: KUBECONFIG points it at the rehearsal, --kubectl at its kubectl."""
    cp = synced.cluster.cp
    env_vars = {**os.environ, "KUBECONFIG": str(cp.kubeconfig)}
    return subprocess.run([sys.executable, "-m", "vcpl", "drift", venue, env, "--kubectl", str(cp.bin / "kubectl"),
                           "--context", "admin"], cwd=paths.ROOT, env=env_vars, capture_output=True, text=True, timeout=120)


def test_drift_reports_a_hand_edit_and_clears_after_reapply(synced: Any) -> None:
    """A hand edit (`kubectl patch` of a ConfigMap's data) is reported by `vcpl drift` with the object
    and the field; the next GitOps sync (Flux asked to reconcile the overlay's Kustomization) leaves no drift."""
    c = synced.cluster
    key = synced.keys("cert")[0]
    venue, env = key[1], key[0]
    ns = synced.namespace(key)
    # An earlier scenario's commit may still be reconciling here: it would undo the edit below.
    synced.engine.wait_ready([f"{venue}-{env}"], revision=synced.commit)
    proc = run_drift(synced, venue, env)
    assert proc.returncode == 0 and "no drift" in proc.stdout, f"drift before any edit: rc={proc.returncode}\n{proc.stdout}{proc.stderr}"
    cm = next(d for d in synced.overlays[key] if d["kind"] == "ConfigMap" and d.get("data"))
    field = sorted(cm["data"])[0]
    c.kubectl("patch", "configmap", cm["metadata"]["name"], "-n", ns, "--type=merge",
              "-p", json.dumps({"data": {field: cm["data"][field] + "\n# hand-edited in the cluster\n"}}))
    proc = run_drift(synced, venue, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = f"ConfigMap/{ns}/{cm['metadata']['name']}: changed"
    assert line in proc.stdout and f"data.{field}" in proc.stdout, proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout
    before = synced.engine.status()[f"{venue}-{env}"]["status"].get("lastHandledReconcileAt")
    synced.engine.reconcile(KUSTOMIZATION, f"{venue}-{env}")
    c.wait(f"Flux handles the reconcile request of {venue}-{env}",
           lambda: synced.engine.status()[f"{venue}-{env}"]["status"].get("lastHandledReconcileAt") != before
           and synced.engine.wait_ready([f"{venue}-{env}"]), timeout=120)
    proc = run_drift(synced, venue, env)
    assert proc.returncode == 0 and "no drift" in proc.stdout, proc.stdout + proc.stderr


def test_config_change_rolls_the_statefulset_and_keeps_the_pvc(synced: Any, scratch: Path) -> None:
    """A run-book change that reaches the gateway configuration (the reconnect interval), regenerated
    and re-rendered in a scratch repo, changes the ConfigMap and the pod template's config-hash
    annotation; committed and synced by Flux, the StatefulSet gets a new controller revision, every pod is replaced onto
    it, and each PersistentVolumeClaim (the session state) keeps its UID. kwok: the new pod does not
    read the config or the volume; that the claim survives with the same identity is what is proven."""
    from ruamel.yaml import YAML

    c = synced.cluster
    key = synced.keys("prod", scheduled=False)[1]
    venue, env = key[1], key[0]
    ns = synced.namespace(key)
    sts = synced.statefulset(key)
    name = sts["metadata"]["name"]
    rb = scratch / "venues" / venue / "runbook.yaml"
    rt = YAML()
    rt.preserve_quotes = True
    data = rt.load(rb.read_text())
    data["failover"]["reconnect"]["steps"][0]["intervalSeconds"] += 1
    with rb.open("w") as f:
        rt.dump(data, f)
    proc = vcpl(scratch, "generate", "--venue", venue)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    docs = render_in(scratch, venue, env)
    new_sts = next(d for d in docs if d["kind"] == "StatefulSet")
    hash_key = "vcpl.dev/config-hash"
    old_hash = sts["spec"]["template"]["metadata"]["annotations"][hash_key]
    assert new_sts["spec"]["template"]["metadata"]["annotations"][hash_key] != old_hash

    live = c.get_json("statefulset", "-n", ns, name)
    revision = live["status"]["updateRevision"]
    pods_before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in synced.gateway_pods(key)}
    claims = {p["metadata"]["name"]: p["metadata"]["uid"] for p in c.get_json("pvc", "-n", ns)["items"]}
    assert claims and pods_before

    synced.sync_from(scratch, f"{venue}: reconnect interval + 1 s", [f"{venue}-{env}"])
    c.wait_statefulsets(ns, timeout=150)
    live = c.get_json("statefulset", "-n", ns, name)
    assert live["status"]["updateRevision"] != revision and live["status"]["currentRevision"] == live["status"]["updateRevision"]
    assert live["spec"]["template"]["metadata"]["annotations"][hash_key] != old_hash
    pods_after = synced.gateway_pods(key)
    assert {p["metadata"]["name"] for p in pods_after} == set(pods_before)
    for p in pods_after:
        assert p["metadata"]["uid"] != pods_before[p["metadata"]["name"]], f"{p['metadata']['name']} was not replaced"
        assert p["metadata"]["labels"]["controller-revision-hash"] == live["status"]["updateRevision"]
    claims_after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in c.get_json("pvc", "-n", ns)["items"]}
    assert claims_after == claims, (claims, claims_after)


# --- the venue simulators the dev overlays point at ---------------------------------------------------------
def test_venue_simulators_run_in_their_restricted_namespace(synced: Any) -> None:
    """platform/venue-simulators applied: admitted by the restricted namespace without a Pod
    Security warning, and every simulator Deployment becomes Available on the kwok nodes."""
    c = synced.cluster
    docs = yamlio.load_all(render.build_dir(simulators.ROOT))
    proc = c.apply(docs)
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    assert names

    def available() -> bool:
        items = c.get_json("deployments", "-n", simulators.NAMESPACE)["items"]
        ready = {i["metadata"]["name"] for i in items if (i.get("status") or {}).get("availableReplicas") == 1}
        return set(names) <= ready
    c.wait("every venue simulator Available", available, timeout=180, diagnose=lambda: c.diagnose(simulators.NAMESPACE))
