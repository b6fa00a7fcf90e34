"""The rehearsal on a kind cluster (`make rehearse BACKEND=kind`), where a container engine runs.

kind provides the control plane (kubeadm-made: its own etcd, API server, controller manager,
scheduler, CoreDNS, a default StorageClass) inside a container; kwok still provides the nodes
the gateways are scheduled on, as a local process against kind's API server, so the scenario suite
is the same and no gateway image has to be pullable. What differs from the local backend is who
built and runs the control plane. The kind cluster is deleted on exit.

Not exercised by CI here: these machines have no container engine (README, "Cluster rehearsal").
The Kyverno admission scenarios keep their own local control plane on either backend (their
webhooks listen on this host's 127.0.0.1, which kind's API server, in a container, cannot reach).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from vcpl.rehearsal.controlplane import KWOK_LABEL, POD_CIDR, ControlPlane, RehearsalError, ToolchainMissing, free_ports

ENGINES = ("docker", "podman")
CONTEXT = "admin"   # what the local backend's kubeconfig calls its context (vcpl drift --context admin)


def engine() -> str | None:
    """The container engine that answers, or None."""
    for name in ENGINES:
        if shutil.which(name) and subprocess.run([name, "info"], capture_output=True).returncode == 0:
            return name
    return None


class KindCluster(ControlPlane):
    """ControlPlane's interface (kubectl, get_json, kubeconfig, bin, dir, log_path) on kind + kwok."""

    def _prepare(self) -> None:
        runtime = engine()
        if runtime is None:
            raise ToolchainMissing(f"cluster rehearsal: BACKEND=kind needs a running container engine ({' or '.join(ENGINES)}); none answers here")
        missing = [b for b in ("kind", "kubectl", "kwok") if not os.access(self.bin / b, os.X_OK)]
        if missing:
            raise ToolchainMissing(f"cluster rehearsal: {', '.join(missing)} not found in {self.bin}: run `make setup-rehearsal`")
        self.runtime = runtime
        self.name = f"vcpl-rehearsal-{os.getpid()}"
        self.dir = Path(tempfile.mkdtemp(prefix="vcpl-rehearsal-kind-"))
        self._entered = True

    def _start(self) -> None:
        (self.dir / "logs").mkdir()
        self.kubeconfig = self.dir / "admin.kubeconfig"
        config = self.dir / "kind.yaml"
        # The API server listens on 127.0.0.1 only; the kwok process on this host reaches it there.
        config.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
                          "networking: {apiServerAddress: 127.0.0.1}\nnodes:\n- role: control-plane\n")
        env = dict(os.environ, KIND_EXPERIMENTAL_PROVIDER=self.runtime)
        with self.log_path("kind").open("wb") as log:
            proc = subprocess.run([str(self.bin / "kind"), "create", "cluster", f"--name={self.name}", f"--config={config}",
                                   f"--kubeconfig={self.kubeconfig}", "--wait=120s"], stdout=log, stderr=subprocess.STDOUT, env=env)
        self._created = True
        if proc.returncode != 0:
            raise RehearsalError(f"cluster rehearsal: kind create cluster failed: {self.log_tail('kind')}")
        self.kubectl("config", "rename-context", f"kind-{self.name}", CONTEXT)
        # kind's default StorageClass provisions on the node a pod lands on, and kwok nodes run no
        # provisioner pod: without it the claims bind to the rehearsal's PersistentVolumes, as locally.
        self.kubectl("delete", "storageclass", "--all")
        self.server = self.get_json_config_server()
        kwok_port, = free_ports(1)
        kwok_cfg = self.dir / "kwok.yaml"
        kwok_cfg.write_text("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n")
        self._spawn("kwok", [
            f"--config={kwok_cfg}", f"--kubeconfig={self.kubeconfig}",
            f"--manage-nodes-with-label-selector={KWOK_LABEL[0]}={KWOK_LABEL[1]}",
            f"--server-address=127.0.0.1:{kwok_port}", "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}", "--node-ip=10.240.0.1",
        ])
        self._wait_http("kwok", f"http://127.0.0.1:{kwok_port}/healthz", None, lambda b: True)

    def get_json_config_server(self) -> str:
        out = self.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
        return out.stdout.strip()

    def stop(self, grace: float = 15.0) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self._signal(proc, signal.SIGKILL)
        self.procs.clear()
        if getattr(self, "_created", False):
            env = dict(os.environ, KIND_EXPERIMENTAL_PROVIDER=self.runtime)
            subprocess.run([str(self.bin / "kind"), "delete", "cluster", f"--name={self.name}"], capture_output=True, env=env)
            self._created = False
        if self._entered and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._entered = False
