"""Shared fixtures of the cluster rehearsal: ONE control plane per test session, every overlay synced once.

* `rehearsal_gate()`: skips (or, with VCPL_REHEARSAL_REQUIRED=1 as `make rehearse` sets it, fails)
  when the toolchain of `make setup-rehearsal` is missing; fails for VCPL_REHEARSAL_BACKEND=kind
  when no container engine answers.
* `control_plane` (session): a started vcpl.rehearsal.controlplane.ControlPlane, or with
  VCPL_REHEARSAL_BACKEND=kind a vcpl.rehearsal.kind.KindCluster (kind's control plane, kwok nodes).
* `synced` (session): the topology of vcpl.rehearsal.topology applied as kwok Nodes and the
  PersistentVolumes a provisioner would make (the cluster's, applied by the admin); then the GitOps
  engine syncs: the working tree is committed to a git server on 127.0.0.1 (git http-backend),
  Flux's source-controller fetches it and kustomize-controller applies the shipped gitops/flux/<env>
  Kustomizations (every overlay and the VPN gateway), after two Kustomizations standing in for the
  cluster's platform (`platform-crds`: the CRDs the overlays need; `platform-secret-stores`: their
  ClusterSecretStores), which the shipped ones dependsOn. Then every session is opened (each
  StatefulSet scaled to what its session-open CronJob scales it to) and every StatefulSet is Ready.
  Tests that change live objects each take an overlay nobody else asserts on, and change it the
  GitOps way: a new commit (`Synced.sync_from`) that the engine reconciles.
"""
from __future__ import annotations

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
from vcpl.rehearsal import controlplane, flux, gitserver, kind as kind_backend, topology
from vcpl.rehearsal.controlplane import ControlPlane

Doc = dict[str, Any]
Key = tuple[str, str]  # (env, venue)

REQUIRED_ENV = "VCPL_REHEARSAL_REQUIRED"
BACKEND_ENV = "VCPL_REHEARSAL_BACKEND"
CRD_SOURCES = paths.ROOT / "tests" / "schemas" / "crds" / "source"
VPN_GATEWAY_GENERATED = paths.ROOT / "platform" / "vpn-gateway" / "generated"
MANAGER = "vcpl-rehearsal"
READY_TIMEOUT = 240.0
_SCALE = re.compile(r"^kubectl\s+scale\s+(?P<target>\S+)\s+--replicas=(?P<n>\d+)$")


# --- the gate: skip, or fail when required ---------------------------------------------------------------
def backend() -> str:
    return os.environ.get(BACKEND_ENV, "") or "local"


def rehearsal_gate() -> None:
    chosen = backend()
    if chosen not in ("local", "kind"):
        pytest.fail(f"cluster rehearsal: unknown backend {chosen!r}; expected local (default) or kind", pytrace=False)
    missing = controlplane.missing_binaries() + flux.missing(controlplane.bin_dir())
    reason = ""
    if missing:
        reason = (f"cluster rehearsal toolchain absent ({', '.join(missing)} not in {controlplane.bin_dir()}): "
                  "run `make setup-rehearsal`")
    elif not shutil_which("openssl"):
        reason = "cluster rehearsal: the openssl CLI is not installed (it makes the throwaway CA)"
    elif chosen == "kind" and kind_backend.engine() is None:
        # Asked for explicitly: a missing engine is a failure, never a skip.
        pytest.fail(f"cluster rehearsal: BACKEND=kind needs a running container engine ({' or '.join(kind_backend.ENGINES)}); "
                    "none answers here. Run `make rehearse` without BACKEND (local processes + kwok)", pytrace=False)
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
    engine: flux.Flux | None = None                # the GitOps engine that synced them
    repo: gitserver.Repository | None = None       # the git repository it syncs from
    kustomizations: list[str] = field(default_factory=list)
    commit: str = ""                               # the newest commit the engine was given

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

    def sync_from(self, tree: Path, message: str, kustomizations: list[str] | None = None) -> str:
        """Commit `tree` (a changed copy of the repository) to the engine's git repository, make
        Flux fetch it and wait until the named Kustomizations (default: all) have applied that
        commit; return its id. The others apply it too, in the background."""
        assert self.engine and self.repo
        extra = {str(p.relative_to(self.repo.work)): p.read_text() for p in (self.repo.work / PLATFORM_DIR).rglob("*") if p.is_file()}
        commit = self.repo.snapshot(tree, extra, message)
        source = next(iter(self.engine.status(GIT_REPOSITORY)))
        self.engine.reconcile(GIT_REPOSITORY, source)
        self.engine.wait_ready([source], revision=commit, kind=GIT_REPOSITORY)
        self.engine.wait_ready(kustomizations or self.kustomizations, revision=commit)
        self.commit = commit
        return commit

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
    with (kind_backend.KindCluster() if backend() == "kind" else ControlPlane()) as cp:
        cluster = Cluster(cp)
        cluster.started_in = time.monotonic() - t0  # type: ignore[attr-defined]
        yield cluster


GITOPS_FLUX = paths.ROOT / "gitops" / "flux"
# Stand-ins for what the cluster's platform team syncs before any venue (the shipped Kustomizations
# dependsOn these names): committed only to the rehearsal's git repository, never to this one.
PLATFORM_DIR = "rehearsal-platform"
PLATFORM_KUSTOMIZATIONS = ("platform-crds", "platform-secret-stores")
GIT_REPOSITORY = flux.GIT_REPOSITORY


def secret_stores(docs: list[Doc]) -> list[Doc]:
    """The ClusterSecretStores the ExternalSecrets name (no External Secrets operator runs: they only exist)."""
    names = sorted({d["spec"]["secretStoreRef"]["name"] for d in docs if d["kind"] == "ExternalSecret"
                    and d["spec"]["secretStoreRef"].get("kind") == "ClusterSecretStore"})
    return [{"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": n},
             "spec": {"provider": {"fake": {"data": []}}}} for n in names]


def platform_files(crds: list[Doc], stores: list[Doc]) -> dict[str, str]:
    files = {}
    for name, docs in (("crds", crds), ("secret-stores", stores)):
        files[f"{PLATFORM_DIR}/{name}/objects.yaml"] = as_yaml(docs)
        files[f"{PLATFORM_DIR}/{name}/kustomization.yaml"] = "resources:\n- objects.yaml\n"
    return files


def flux_objects(git_url: str) -> tuple[list[Doc], list[str]]:
    """The shipped Flux objects (gitops/flux and gitops/flux/<env>), the GitRepository's URL swapped
    for the rehearsal's git server, plus the two platform stand-ins; and the Kustomization names."""
    source = yamlio.load_all(render.build_dir(GITOPS_FLUX))
    for doc in source:
        if doc["kind"] == "GitRepository":
            doc["spec"]["url"] = f"{git_url}/venue-connectivity.git"
    shipped = [d for env in ("dev", "cert", "prod") for d in yamlio.load_all(render.build_dir(GITOPS_FLUX / env))]
    repo_name = next(d["metadata"]["name"] for d in source if d["kind"] == "GitRepository")
    platform = []
    for name, depends in (("platform-crds", []), ("platform-secret-stores", ["platform-crds"])):
        platform.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                         "metadata": {"name": name, "namespace": flux.NAMESPACE},
                         "spec": {"interval": "10m", "prune": True, "path": f"./{PLATFORM_DIR}/{name.removeprefix('platform-')}",
                                  "sourceRef": {"kind": "GitRepository", "name": repo_name},
                                  "dependsOn": [{"name": d} for d in depends]}})
    names = [d["metadata"]["name"] for d in platform + shipped]
    return source + platform + shipped, names


@pytest.fixture(scope="session")
def synced(control_plane: Cluster, rendered_overlays: dict[Key, list[Doc]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """Every overlay synced by Flux from git (see the module docstring), sessions open, all Ready."""
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
    stores = secret_stores(all_docs)
    crds, synthesized = crds_for(all_docs + stores)
    probe = Synced(cluster, overlays, platform_docs, topo, synthesized, "")
    replicas = {key: probe.session_replicas(key) for key in overlays}
    cluster.apply(persistent_volumes(overlays, replicas))
    timings["nodes+volumes"] = time.monotonic() - t

    t = time.monotonic()
    base = tmp_path_factory.mktemp("gitops")
    repo = gitserver.Repository(base)
    extra = platform_files(crds, stores)
    commit = repo.snapshot(paths.ROOT, extra, "the working tree, for the rehearsal")
    timings["git snapshot"] = time.monotonic() - t
    with gitserver.GitServer(base) as git, flux.Flux(cluster.cp) as engine:
        t = time.monotonic()
        objects, names = flux_objects(git.url)
        engine.apply(objects)
        engine.wait_ready([d["metadata"]["name"] for d in objects if d["kind"] == "GitRepository"], revision=commit, kind=GIT_REPOSITORY)
        engine.wait_ready(names, revision=commit, timeout=READY_TIMEOUT + 120)
        timings["flux sync of every Kustomization"] = time.monotonic() - t
        # The engine's apply responses carry the API server's warnings; a server-side dry run of
        # the same objects shows them here (Pod Security "warn" among them).
        stderr = "".join(r.stderr for r in [cluster.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                                                            "--field-manager=kustomize-controller", "-f", "-",
                                                            input=as_yaml([d for docs in overlays.values() for d in docs]), timeout=600)])
        platform_stderr = cluster.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                                          "--field-manager=kustomize-controller", "-f", "-",
                                          input=as_yaml([d for docs in platform_docs.values() for d in docs])).stderr
        # Open every session: what each overlay's session-open CronJob does (`kubectl scale ... --replicas=N`).
        # Run by the admin here; test_scenarios runs the CronJobs' own commands as their service account.
        t = time.monotonic()
        for key in sorted(overlays):
            want = replicas[key]
            live = cluster.get_json("statefulset", "-n", probe.namespace(key), probe.statefulset(key)["metadata"]["name"])
            if want != live["spec"].get("replicas", 1):
                cluster.kubectl("scale", f"statefulset/{live['metadata']['name']}", f"--replicas={want}",
                                "-n", probe.namespace(key))
        cluster.wait_statefulsets()
        timings["sessions open, all Ready"] = time.monotonic() - t
        s = Synced(cluster, overlays, platform_docs, topo, synthesized, stderr, platform_stderr, timings,
                   engine=engine, repo=repo, kustomizations=names, commit=commit)
        yield s
    print(f"\ncluster rehearsal timings (s): {json.dumps({k: round(v, 1) for k, v in s.timings.items()})}")
