"""A throwaway Kubernetes control plane as local processes on 127.0.0.1, nodes simulated by kwok.

    with ControlPlane() as cp:
        cp.kubectl("apply", "--server-side", "-f", "overlay.yaml")

On entry: a temporary directory gets a throwaway CA and certificates (the `openssl` CLI), then
etcd (TLS, data dir in the temp dir), kube-apiserver (secure port, service-account keys,
`--authorization-mode=Node,RBAC`, default admission plugins plus PodSecurity),
kube-controller-manager, kube-scheduler and kwok are started, every port picked free at run time
and bound to 127.0.0.1 only. Entry returns once /readyz of the API server and the health
endpoints of the other components answer ok. On exit (normal, error, KeyboardInterrupt, or a
failure while starting) every process it started is stopped and the temp dir is removed
(VCPL_REHEARSAL_KEEP=1 keeps it and prints where).

Binaries are looked up in .tools/rehearsal/bin (`make setup-rehearsal`), or in the folder that
VCPL_REHEARSAL_BIN names. A missing one raises ToolchainMissing naming it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self, Sequence

from vcpl import paths
from vcpl.errors import VcplError

BIN_ENV = "VCPL_REHEARSAL_BIN"
KEEP_ENV = "VCPL_REHEARSAL_KEEP"
DEFAULT_BIN = paths.ROOT / ".tools" / "rehearsal" / "bin"

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
CLIENTS = ("kubectl",)
REQUIRED = CONTROL_PLANE + CLIENTS

# kwok manages the Nodes carrying this label; kwok_node() builds such a Node.
KWOK_LABEL = ("type", "kwok")
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/16"   # kwok hands pod IPs out of it; they are strings in Pod status, never routed
CLUSTER_NAME = "vcpl-rehearsal"


def probe(url: str, ctx: ssl.SSLContext | None, timeout: float = 5.0) -> tuple[int | None, str]:
    """One GET: (HTTP status, body), or (None, why nothing answered)."""
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ssl.SSLError) as exc:
        return None, str(exc)


class Supervised:
    """Processes started on entry: whatever was started is stopped on exit, and also when starting
    fails half-way (KeyboardInterrupt included)."""

    def _prepare(self) -> None:
        """Checks before anything is started."""

    def _start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._prepare()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RehearsalError(VcplError):
    """The rehearsal control plane could not be started or used; the message says which part."""


class ToolchainMissing(RehearsalError):
    """A binary of the rehearsal toolchain is not installed."""


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_ENV) or DEFAULT_BIN)


def missing_binaries(directory: Path | None = None) -> list[str]:
    directory = directory or bin_dir()
    return [name for name in REQUIRED if not os.access(directory / name, os.X_OK)]


def require_toolchain(directory: Path | None = None) -> Path:
    directory = directory or bin_dir()
    missing = missing_binaries(directory)
    if missing:
        raise ToolchainMissing(
            f"cluster rehearsal: {', '.join(missing)} not found in {directory}: run `make setup-rehearsal`"
        )
    return directory


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def kwok_node(name: str, labels: dict[str, str] | None = None, cpu: str = "32", memory: str = "256Gi",
              pods: str = "110", ephemeral_storage: str = "200Gi") -> dict[str, Any]:
    """A Node manifest kwok will manage: the KWOK_LABEL label plus the usual kwok annotation."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": ephemeral_storage}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                KWOK_LABEL[0]: KWOK_LABEL[1],
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/agent": "",
                **(labels or {}),
            },
        },
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                         "kubeletVersion": "fake", "kubeProxyVersion": "fake"},
        },
    }


# --- processes -------------------------------------------------------------------------------------
def _deathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Children get SIGTERM if this Python process dies without running __exit__ (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip()[:300] for line in text[-lines:]) or "(empty log)"


def start_logged(name: str, argv: Sequence[str], log: Path, cwd: Path,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a rehearsal process in a session of its own (so its whole group can be stopped), its
    output in `log`, and (Linux) killed should this process die first."""
    handle = log.open("wb")
    try:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True,
                                preexec_fn=_deathsig if sys.platform == "linux" else None)
    except OSError as exc:
        raise RehearsalError(f"cluster rehearsal: cannot start {name}: {exc}") from None
    finally:
        handle.close()


def stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process's group, SIGKILL it after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


class ControlPlane(Supervised):
    """Context manager; see the module docstring. Attributes once entered: dir, kubeconfig,
    server (https URL), ports (name -> port), bin (the binary folder)."""

    def __init__(self, bin_directory: Path | None = None, kwok_selector: str | None = None,
                 ready_timeout: float = 90.0, keep: bool | None = None) -> None:
        self.bin = bin_directory or bin_dir()
        self.kwok_selector = kwok_selector or f"{KWOK_LABEL[0]}={KWOK_LABEL[1]}"
        self.ready_timeout = ready_timeout
        self.keep = bool(os.environ.get(KEEP_ENV)) if keep is None else keep
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.dir: Path = Path()
        self.ports: dict[str, int] = {}
        self.kubeconfig: Path = Path()
        self.server = ""
        self._entered = False

    def _prepare(self) -> None:
        require_toolchain(self.bin)
        if not shutil.which("openssl"):
            raise ToolchainMissing("cluster rehearsal: the openssl CLI is not installed (it makes the throwaway CA)")
        self.dir = Path(tempfile.mkdtemp(prefix="vcpl-rehearsal-"))
        self._entered = True

    # -- use --
    def log_path(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = 8) -> str:
        return _tail(self.log_path(name), lines)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        try:
            proc = subprocess.run(cmd, input=input, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RehearsalError(f"kubectl {' '.join(args)}: no answer within {timeout:.0f}s") from None
        if check and proc.returncode != 0:
            err = " | ".join(proc.stderr.strip().splitlines()[-6:])
            raise RehearsalError(f"kubectl {' '.join(args)}: exit {proc.returncode}: {err}")
        return proc

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    # -- start --
    def _start(self) -> None:
        d = self.dir
        for sub in ("pki", "logs", "etcd", "apiserver", "kcm", "scheduler"):
            (d / sub).mkdir(mode=0o700)
        names = ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler", "kwok")
        self.ports = dict(zip(names, free_ports(len(names))))
        pki = _Pki(d / "pki")
        pki.make_all()
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        self.kubeconfig = d / "admin.kubeconfig"
        for user, path in (("admin", self.kubeconfig), ("kcm", d / "kcm.kubeconfig"),
                           ("scheduler", d / "scheduler.kubeconfig")):
            path.write_text(json.dumps(_kubeconfig(self.server, pki.ca_crt, pki.crt(user), pki.key(user), user), indent=1))
            path.chmod(0o600)

        p = self.ports
        etcd_url = f"https://127.0.0.1:{p['etcd']}"
        self._spawn("etcd", [
            "--name=rehearsal", f"--data-dir={d / 'etcd' / 'data'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
            f"--initial-cluster=rehearsal=http://127.0.0.1:{p['etcd-peer']}",
            "--initial-cluster-state=new",
            f"--cert-file={pki.crt('etcd')}", f"--key-file={pki.key('etcd')}",
            f"--trusted-ca-file={pki.ca_crt}", "--client-cert-auth=true",
            "--quota-backend-bytes=1073741824", "--snapshot-count=10000", "--log-level=warn",
        ])
        etcd_ctx = pki.context("etcd-client")
        self._wait_http("etcd", f"{etcd_url}/health", etcd_ctx, lambda body: '"health":"true"' in body.replace(" ", ""))

        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}", f"--etcd-cafile={pki.ca_crt}",
            f"--etcd-certfile={pki.crt('etcd-client')}", f"--etcd-keyfile={pki.key('etcd-client')}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p['apiserver']}",
            f"--cert-dir={d / 'apiserver'}",
            f"--tls-cert-file={pki.crt('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca_crt}",
            # Published in kube-system/extension-apiserver-authentication for the delegated
            # authentication of the controller manager and scheduler (no front proxy runs here).
            f"--requestheader-client-ca-file={pki.ca_crt}", "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=PodSecurity",
            # The `kubernetes` Service's endpoints would carry 127.0.0.1, which Endpoints refuse.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=false", "--profiling=false", "--event-ttl=1h",
        ])
        self._wait_http("kube-apiserver", f"{self.server}/readyz", pki.context("admin"), lambda body: body.strip() == "ok")

        common = ["--bind-address=127.0.0.1", "--leader-elect=false"]
        kcm_cfg = d / "kcm.kubeconfig"
        self._spawn("kube-controller-manager", common + [
            f"--secure-port={p['kcm']}", f"--cert-dir={d / 'kcm'}",
            f"--kubeconfig={kcm_cfg}", f"--authentication-kubeconfig={kcm_cfg}", f"--authorization-kubeconfig={kcm_cfg}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_crt}",
            f"--cluster-signing-cert-file={pki.ca_crt}", f"--cluster-signing-key-file={pki.ca_key}",
            f"--cluster-name={CLUSTER_NAME}",
        ])
        sched_cfg = d / "scheduler.kubeconfig"
        self._spawn("kube-scheduler", common + [
            f"--secure-port={p['scheduler']}", f"--cert-dir={d / 'scheduler'}",
            f"--kubeconfig={sched_cfg}", f"--authentication-kubeconfig={sched_cfg}", f"--authorization-kubeconfig={sched_cfg}",
        ])
        kwok_cfg = d / "kwok.yaml"
        # An explicit (empty) configuration, so no ~/.kwok/kwok.yaml of the user leaks in.
        kwok_cfg.write_text("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n")
        self._spawn("kwok", [
            f"--config={kwok_cfg}", f"--kubeconfig={self.kubeconfig}",
            f"--manage-nodes-with-label-selector={self.kwok_selector}",
            f"--server-address=127.0.0.1:{p['kwok']}", "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}", "--node-ip=10.240.0.1",
        ])
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # the components' self-signed serving certs, on loopback
        self._wait_http("kube-controller-manager", f"https://127.0.0.1:{p['kcm']}/healthz", insecure, lambda b: b.strip() == "ok")
        self._wait_http("kube-scheduler", f"https://127.0.0.1:{p['scheduler']}/healthz", insecure, lambda b: b.strip() == "ok")
        self._wait_http("kwok", f"http://127.0.0.1:{p['kwok']}/healthz", None, lambda b: True)

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        self.procs[name] = start_logged(name, [str(self.bin / name), *args], self.log_path(name), self.dir)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RehearsalError(f"cluster rehearsal: {name} exited with code {proc.returncode}: {self.log_tail(name)}")

    def _wait_http(self, name: str, url: str, ctx: ssl.SSLContext | None, ok: Any) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while True:
            self._check_alive()
            status, body = probe(url, ctx)
            if status == 200 and ok(body):
                return
            last = f"HTTP {status}: {body[-300:]}" if status else body
            if time.monotonic() > deadline:
                raise RehearsalError(
                    f"cluster rehearsal: {name} not ready at {url} within {self.ready_timeout:.0f}s ({last}); log: {self.log_tail(name)}"
                )
            time.sleep(0.3)

    # -- stop --
    def stop(self, grace: float = 15.0) -> None:
        """Stop every started process (clients first), then remove the temp dir. Idempotent."""
        order = [n for n in reversed(CONTROL_PLANE) if n in self.procs]
        for group in (order[:-2], order[-2:]):  # kwok, scheduler, kcm; then apiserver, etcd
            for name in group:
                self._signal(self.procs[name], signal.SIGTERM)
            deadline = time.monotonic() + grace
            for name in group:
                proc = self.procs[name]
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._signal(proc, signal.SIGKILL)
                    proc.wait(timeout=10)
        self.procs.clear()
        if self._entered and self.dir.exists():
            if self.keep:
                print(f"cluster rehearsal: kept {self.dir}", file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        self._entered = False

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)  # its own session: the group is exactly what we started
        except ProcessLookupError:
            pass


# --- certificates ---------------------------------------------------------------------------------
# name -> (subject, extendedKeyUsage, subjectAltName or None)
_CERTS: dict[str, tuple[str, str, str | None]] = {
    "etcd": ("/CN=etcd", "serverAuth,clientAuth", "IP:127.0.0.1,DNS:localhost"),
    "etcd-client": ("/CN=kube-apiserver-etcd-client", "clientAuth", None),
    "apiserver": ("/CN=kube-apiserver", "serverAuth",
                  f"IP:127.0.0.1,IP:{KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
                  "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"),
    "admin": ("/O=system:masters/CN=vcpl-rehearsal-admin", "clientAuth", None),
    "kcm": ("/CN=system:kube-controller-manager", "clientAuth", None),
    "scheduler": ("/CN=system:kube-scheduler", "clientAuth", None),
}


class _Pki:
    def __init__(self, directory: Path) -> None:
        self.d = directory
        self.ca_crt = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        self.sa_key = directory / "sa.key"
        self.sa_pub = directory / "sa.pub"

    def crt(self, name: str) -> Path:
        return self.d / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.d / f"{name}.key"

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(["openssl", *args], cwd=self.d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            err = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise RehearsalError(f"cluster rehearsal: openssl {args[0]} failed: {err}")

    def make_all(self) -> None:
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._openssl("req", "-x509", *ec, "-keyout", str(self.ca_key), "-out", str(self.ca_crt), "-days", "2",
                      "-subj", "/CN=vcpl-rehearsal-ca",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(self.sa_key))
        self._openssl("pkey", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub))
        for serial, (name, (subject, eku, san)) in enumerate(_CERTS.items(), start=2):
            ext = self.d / f"{name}.ext"
            lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
                     f"extendedKeyUsage={eku}"]
            if san:
                lines.append(f"subjectAltName={san}")
            ext.write_text("\n".join(lines) + "\n")
            csr = self.d / f"{name}.csr"
            self._openssl("req", "-new", *ec, "-keyout", str(self.key(name)), "-out", str(csr), "-subj", subject)
            self._openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca_crt), "-CAkey", str(self.ca_key),
                          "-set_serial", str(serial), "-days", "2", "-extfile", str(ext), "-out", str(self.crt(name)))
        for f in self.d.iterdir():
            f.chmod(0o600)

    def context(self, client: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_crt))
        ctx.load_cert_chain(str(self.crt(client)), str(self.key(client)))
        return ctx


def _kubeconfig(server: str, ca: Path, crt: Path, key: Path, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(crt), "client-key": str(key)}}],
        "contexts": [{"name": user, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": user,
    }
