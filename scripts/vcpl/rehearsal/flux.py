"""Flux's source-controller and kustomize-controller as local processes against a rehearsal
control plane: the GitOps engine that syncs the overlays from git.

    with ControlPlane() as cp, GitServer(base) as git, Flux(cp) as flux:
        flux.install_source(f"{git.url}/venue-connectivity.git")   # the shipped GitRepository, URL swapped
        flux.apply(kustomizations)                                 # the shipped gitops/flux/<env> objects
        flux.wait_ready(names)

Both controllers run out of cluster with the rehearsal's admin kubeconfig, leader election off,
every listener on 127.0.0.1: source-controller serves its artifacts from a local storage folder
at --storage-adv-addr, where kustomize-controller downloads them. Their CRDs come from the same
module versions (`make setup-rehearsal` copies them to .tools/rehearsal/flux-crds). Nothing here
interprets a Kustomization: dependsOn, health checks, prune and apply order are the controllers'.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from vcpl import paths
from vcpl.rehearsal.controlplane import ControlPlane, RehearsalError, Supervised, ToolchainMissing, _tail, free_ports, probe, start_logged, stop_group

NAMESPACE = "flux-system"
CONTROLLERS = ("source-controller", "kustomize-controller")
CRDS_ENV = "VCPL_REHEARSAL_FLUX_CRDS"
DEFAULT_CRDS = paths.ROOT / ".tools" / "rehearsal" / "flux-crds"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
KUSTOMIZATION = "kustomizations.kustomize.toolkit.fluxcd.io"
GIT_REPOSITORY = "gitrepositories.source.toolkit.fluxcd.io"


def crds_dir() -> Path:
    return Path(os.environ.get(CRDS_ENV) or DEFAULT_CRDS)


def missing(directory: Path) -> list[str]:
    out = [c for c in CONTROLLERS if not os.access(directory / c, os.X_OK)]
    if not any(crds_dir().rglob("*.yaml")):
        out.append(f"the Flux CRDs ({crds_dir()})")
    return out


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return {}


class Flux(Supervised):
    """Context manager; see the module docstring."""

    def __init__(self, cp: ControlPlane, ready_timeout: float = 120.0, concurrent: int = 8) -> None:
        self.cp = cp
        self.ready_timeout = ready_timeout
        self.concurrent = concurrent
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.storage_port = 0

    def _prepare(self) -> None:
        absent = missing(self.cp.bin)
        if absent:
            raise ToolchainMissing(f"cluster rehearsal: {', '.join(absent)} not found: run `make setup-rehearsal`")

    def log_tail(self, name: str, lines: int = 8) -> str:
        return _tail(self.cp.log_path(name), lines)

    def _start(self) -> None:
        crds = [d for p in sorted(crds_dir().rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
                if d and d.get("kind") == "CustomResourceDefinition"]
        self.cp.kubectl("apply", "--server-side", "--field-manager=vcpl-rehearsal", "-f", "-",
                        input=yaml.safe_dump_all(crds + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}], sort_keys=False))
        self.cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{c['metadata']['name']}" for c in crds])
        storage = self.cp.dir / "flux-storage"
        storage.mkdir(exist_ok=True)
        self.storage_port, sc_health, kc_health = free_ports(3)
        common = ["--enable-leader-election=false", "--metrics-addr=0", "--events-addr=", "--log-encoding=console",
                  "--watch-all-namespaces=true", f"--concurrent={self.concurrent}", "--requeue-dependency=2s"]
        self._spawn("source-controller", common + [
            f"--health-addr=127.0.0.1:{sc_health}", f"--storage-path={storage}",
            f"--storage-addr=127.0.0.1:{self.storage_port}", f"--storage-adv-addr=127.0.0.1:{self.storage_port}",
        ])
        self._spawn("kustomize-controller", common + [f"--health-addr=127.0.0.1:{kc_health}", "--no-remote-bases=true"])
        deadline = time.monotonic() + self.ready_timeout
        for name, port in (("source-controller", sc_health), ("kustomize-controller", kc_health)):
            while True:
                self._check_alive()
                status, body = probe(f"http://127.0.0.1:{port}/readyz", None, timeout=2)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise RehearsalError(f"cluster rehearsal: {name} not ready within {self.ready_timeout:.0f}s ({status} {body[:200]}); log: {self.log_tail(name)}")
                time.sleep(0.3)

    def _spawn(self, name: str, args: list[str]) -> None:
        env = dict(os.environ, KUBECONFIG=str(self.cp.kubeconfig), RUNTIME_NAMESPACE=NAMESPACE)
        self.procs[name] = start_logged(name, [str(self.cp.bin / name), *args], self.cp.log_path(name), self.cp.dir, env)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RehearsalError(f"cluster rehearsal: {name} exited with code {proc.returncode}: {self.log_tail(name)}")

    # -- objects --
    def apply(self, docs: list[dict[str, Any]]) -> None:
        self.cp.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=vcpl-rehearsal", "-f", "-",
                        input=yaml.safe_dump_all(docs, sort_keys=False))

    def reconcile(self, kind: str, name: str) -> None:
        """What `flux reconcile` does: ask the controller for a reconcile now."""
        self.cp.kubectl("annotate", "--overwrite", "-n", NAMESPACE, kind, name, f"{REQUESTED_AT}={time.time_ns()}")

    def status(self, kind: str = KUSTOMIZATION) -> dict[str, dict[str, Any]]:
        return {i["metadata"]["name"]: i for i in self.cp.get_json(kind, "-n", NAMESPACE)["items"]}

    def wait_ready(self, names: list[str], revision: str | None = None, timeout: float = 300.0,
                   kind: str = KUSTOMIZATION) -> dict[str, dict[str, Any]]:
        """Wait until every named object is Ready (at `revision`, a commit id, if given); raise with
        each laggard's Ready message otherwise. Returns the objects."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            items = self.status(kind)
            pending = {}
            for name in names:
                obj = items.get(name)
                ready = _condition(obj, "Ready") if obj else {}
                applied = (obj or {}).get("status", {}).get("lastAppliedRevision") or \
                    ((obj or {}).get("status", {}).get("artifact") or {}).get("revision", "")
                if ready.get("status") != "True" or (revision and not applied.endswith(revision)):
                    pending[name] = f"{ready.get('reason', 'no status')}: {ready.get('message', '')[:300]} (revision {applied or '-'})"
            if not pending:
                return items
            if time.monotonic() > deadline:
                lines = "\n".join(f"  {n}: {m}" for n, m in sorted(pending.items()))
                raise RehearsalError(f"cluster rehearsal: {len(pending)} Flux object(s) not Ready within {timeout:.0f}s:\n{lines}\n"
                                     f"kustomize-controller log: {self.log_tail('kustomize-controller', 5)}")
            time.sleep(1)

    # -- stop --
    def stop(self, grace: float = 10.0) -> None:
        procs, self.procs = self.procs, {}
        for proc in procs.values():
            stop_group(proc, grace)


def describe(items: dict[str, dict[str, Any]]) -> str:
    return json.dumps({n: _condition(o, "Ready").get("message", "") for n, o in items.items()}, indent=1)
