"""The Kyverno admission controller as a local process against a rehearsal control plane.

    with ControlPlane() as cp, Kyverno(cp) as kyverno:
        kyverno.apply_policies(render.kustomize("policies/kyverno-enforce"))
        cp.kubectl("apply", "--server-side", "-f", "gateway.yaml")   # refused if it breaks a rule

Kyverno runs **out of cluster**, the way its own developers run it: `--kubeconfig` points at the
rehearsal's admin kubeconfig and `--serverIP=127.0.0.1:<port>` makes it register its webhooks with
`clientConfig.url: https://127.0.0.1:<port>/...` instead of a Service reference (no Service, no
Deployment, no pod). The webhook server listens on that port (`--webhookServerHost=127.0.0.1`,
`--webhookServerPort`); its Prometheus endpoint, which --disableMetrics does not stop, is bound
to another free loopback port. Its in-process certificate manager makes a self-signed CA and a serving
certificate whose IP SAN is 127.0.0.1 (from --serverIP), stores them in the Secrets named by
`--caSecretName` / `--tlsSecretName` in its namespace and puts the CA in every webhook's
`caBundle`, so the API server trusts the webhooks without the rehearsal's own CA.

On entry: the CRDs of the pinned Kyverno (`make setup-rehearsal` copies config/crds/** of
github.com/kyverno/kyverno@v1.19.0 to .tools/rehearsal/kyverno-crds) are applied server-side and
waited Established; the `kyverno` namespace and a minimal `kyverno` ConfigMap (the Helm chart's
resource filters and a namespaceSelector leaving kube-system and kyverno out of the webhooks) are
created; then the controller starts, and entry returns once its readiness endpoint answers and the
policy validating webhook and the resource webhooks are registered with URLs on 127.0.0.1.
On exit the process is stopped (its log is in the control plane's log folder, kyverno.log).
"""
from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from vcpl import paths
from vcpl.rehearsal.controlplane import (
    ControlPlane,
    RehearsalError,
    Supervised,
    ToolchainMissing,
    _tail,
    bin_dir,
    free_ports,
    probe,
    start_logged,
    stop_group,
)

KYVERNO_VERSION = "v1.19.0"
CRDS_ENV = "VCPL_REHEARSAL_KYVERNO_CRDS"
DEFAULT_CRDS = paths.ROOT / ".tools" / "rehearsal" / "kyverno-crds"
NAMESPACE = "kyverno"
CA_SECRET = "kyverno-svc.kyverno.svc.kyverno-tls-ca"
TLS_SECRET = "kyverno-svc.kyverno.svc.kyverno-tls-pair"
POLICY_WEBHOOK = "kyverno-policy-validating-webhook-cfg"
RESOURCE_VALIDATING_WEBHOOK = "kyverno-resource-validating-webhook-cfg"

# The Helm chart's resource filters for the objects Kyverno must never judge (v1.19.0 values.yaml,
# config.resourceFilters, without the entries naming the chart's own Deployments and roles).
RESOURCE_FILTERS = (
    "[Event,*,*]", "[*/*,kube-system,*]", "[*/*,kube-public,*]", "[*/*,kube-node-lease,*]",
    "[Node,*,*]", "[Node/?*,*,*]", "[APIService,*,*]", "[APIService/?*,*,*]", "[TokenReview,*,*]",
    "[SubjectAccessReview,*,*]", "[SelfSubjectAccessReview,*,*]", "[Binding,*,*]", "[Pod/binding,*,*]",
    "[ReplicaSet,*,*]", "[ReplicaSet/?*,*,*]", "[EphemeralReport,*,*]", "[ClusterEphemeralReport,*,*]",
    f"[*/*,{NAMESPACE},*]",
)


def crds_dir() -> Path:
    return Path(os.environ.get(CRDS_ENV) or DEFAULT_CRDS)


def missing(directory: Path | None = None) -> list[str]:
    """What `make setup-rehearsal` has not installed for Kyverno: the binary and/or its CRDs."""
    out = []
    if not os.access((directory or bin_dir()) / "kyverno", os.X_OK):
        out.append("kyverno")
    if not any(crds_dir().rglob("*.yaml")):
        out.append(f"the Kyverno CRDs ({crds_dir()})")
    return out


def crd_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(crds_dir().rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CustomResourceDefinition"]
    return docs


class Kyverno(Supervised):
    """Context manager; see the module docstring. Attributes once entered: port, url, flags, proc."""

    def __init__(self, cp: ControlPlane, ready_timeout: float = 120.0) -> None:
        self.cp = cp
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.metrics_port = 0
        self.url = ""
        self.flags: list[str] = []
        self.timings: dict[str, float] = {}

    def _prepare(self) -> None:
        absent = missing(self.cp.bin)
        if absent:
            raise ToolchainMissing(f"cluster rehearsal: {', '.join(absent)} not found: run `make setup-rehearsal`")

    @property
    def log_path(self) -> Path:
        return self.cp.log_path("kyverno")

    def log_tail(self, lines: int = 8) -> str:
        return _tail(self.log_path, lines)

    # -- start --
    def _start(self) -> None:
        t0 = time.monotonic()
        crds = crd_documents()
        # Server-side: the ClusterPolicy CRD is far beyond the 256 KiB last-applied annotation.
        self.cp.kubectl("apply", "--server-side", "--field-manager=vcpl-rehearsal", "-f", "-",
                        input=yaml.safe_dump_all(crds, sort_keys=False))
        self.cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        *[f"crd/{c['metadata']['name']}" for c in crds])
        webhooks = [{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", NAMESPACE]}]}}]
        setup = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kyverno", "namespace": NAMESPACE},
             "data": {"resourceFilters": "".join(RESOURCE_FILTERS), "excludeGroups": "system:nodes",
                      "webhooks": json.dumps(webhooks), "enableDefaultRegistryMutation": "false"}},
        ]
        self.cp.kubectl("apply", "--server-side", "--field-manager=vcpl-rehearsal", "-f", "-",
                        input=yaml.safe_dump_all(setup, sort_keys=False))
        self.timings["crds+namespace"] = time.monotonic() - t0

        self.port, self.metrics_port = free_ports(2)
        self.url = f"https://127.0.0.1:{self.port}"
        self.flags = [
            f"--kubeconfig={self.cp.kubeconfig}",
            f"--serverIP=127.0.0.1:{self.port}",
            "--webhookServerHost=127.0.0.1", f"--webhookServerPort={self.port}",
            f"--caSecretName={CA_SECRET}", f"--tlsSecretName={TLS_SECRET}", "--tlsKeyAlgorithm=ECDSA",
            # --disableMetrics stops the instruments, not the Prometheus endpoint (default [::]:8000):
            # bind that to a free loopback port.
            "--disableMetrics", "--metricsHost=127.0.0.1", f"--metricsPort={self.metrics_port}",
            "--controllerRuntimeMetricsAddress=0",
            "--admissionReports=false", "--enableReporting=",
            "--autoUpdateWebhooks=true", "--webhookTimeout=30",  # 30 is the maximum; 2 CPUs under load
            "--generateValidatingAdmissionPolicy=false", "--generateMutatingAdmissionPolicy=false",
            "--registryCredentialHelpers=", "--leaderElectionRetryPeriod=1s",
            "--loggingFormat=text", "--disableLogColor", "--v=2",
        ]
        env = dict(os.environ, KYVERNO_NAMESPACE=NAMESPACE, KYVERNO_POD_NAME="kyverno-rehearsal",
                   KYVERNO_SERVICEACCOUNT_NAME="kyverno", KYVERNO_DEPLOYMENT="kyverno", KYVERNO_SVC="kyverno-svc",
                   INIT_CONFIG="kyverno", METRICS_CONFIG="kyverno-metrics")
        t1 = time.monotonic()
        self.proc = start_logged("kyverno", [str(self.cp.bin / "kyverno"), *self.flags], self.log_path, self.cp.dir, env)
        self._wait_ready()
        self.timings["kyverno ready"] = time.monotonic() - t1

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RehearsalError(f"cluster rehearsal: kyverno exited with code {self.proc.returncode}: {self.log_tail()}")

    def _deadline_passed(self, deadline: float, what: str, last: str) -> None:
        if time.monotonic() > deadline:
            raise RehearsalError(f"cluster rehearsal: kyverno: {what} not within {self.ready_timeout:.0f}s "
                                 f"({last}); log: {self.log_tail()}")

    def ca_bundle(self) -> bytes | None:
        proc = self.cp.kubectl("get", "secret", "-n", NAMESPACE, CA_SECRET, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout).get("data") or {}
        return base64.b64decode(data["tls.crt"]) if "tls.crt" in data else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        # 1. The webhook server answers its readiness probe over TLS verified with Kyverno's own CA.
        while True:
            self._check_alive()
            ca = self.ca_bundle()
            if ca:
                status, body = probe(f"{self.url}/health/readiness", ssl.create_default_context(cadata=ca.decode()))
                if status == 200:
                    break
                last = f"HTTP {status}" if status else body
            else:
                last = f"no CA secret {NAMESPACE}/{CA_SECRET} yet"
            self._deadline_passed(deadline, "readiness", last)
            time.sleep(0.5)
        # 2. The webhook configurations exist, point at 127.0.0.1 and carry that CA.
        while True:
            self._check_alive()
            names = self.webhook_urls()
            ok = [n for n, urls in names.items() if urls and all(u.startswith(self.url) for u in urls)]
            if POLICY_WEBHOOK in ok:
                return
            last = f"webhook configurations: {json.dumps(names)}"
            self._deadline_passed(deadline, "webhook registration", last)
            time.sleep(0.5)

    def webhook_urls(self) -> dict[str, list[str]]:
        """name -> the clientConfig URLs of every Kyverno webhook configuration."""
        out: dict[str, list[str]] = {}
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            for item in self.cp.get_json(kind, "-l", "webhook.kyverno.io/managed-by=kyverno")["items"]:
                out[item["metadata"]["name"]] = [w["clientConfig"].get("url", "") for w in item.get("webhooks") or []]
        return out

    # -- policies --
    def apply_policies(self, manifest: str, timeout: float | None = None) -> list[str]:
        """Apply ClusterPolicies (YAML text) and wait until each reports Ready and the resource
        validating webhook covers them; returns their names."""
        docs = [d for d in yaml.safe_load_all(manifest) if d]
        names = [d["metadata"]["name"] for d in docs if d.get("kind") == "ClusterPolicy"]
        self.cp.kubectl("apply", "--server-side", "--field-manager=vcpl-rehearsal", "-f", "-", input=manifest)
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while True:
            self._check_alive()
            items = self.cp.get_json("clusterpolicies.kyverno.io")["items"]
            ready = {i["metadata"]["name"] for i in items
                     if any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (i.get("status") or {}).get("conditions") or [])}
            hooks = self.webhook_urls()
            if set(names) <= ready and hooks.get(RESOURCE_VALIDATING_WEBHOOK):
                return names
            last = f"ready {sorted(ready)} of {names}; webhooks {sorted(hooks)}"
            self._deadline_passed(deadline, "policies Ready", last)
            time.sleep(0.5)

    # -- stop --
    def stop(self, grace: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, grace)
