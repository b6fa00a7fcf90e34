"""Cluster rehearsal: the Kyverno admission controller enforcing policies/kyverno-enforce.

A control plane of its own (vcpl.rehearsal.controlplane, never the session one of conftest.py: the
webhooks here fail closed and would judge every other test's objects), the Kyverno admission
controller v1.19.0 as a local process out of cluster (vcpl.rehearsal.admission), and the library's
ClusterPolicies rendered with `kustomize build policies/kyverno-enforce` (every rule Enforce).

* admitted: the rendered cme/prod overlay's built-in objects are applied for real, and the
  StatefulSet controller's pod passes the pod-level rules too;
* refused: the same StatefulSet with one careless change, server-side dry-run; the API server's
  error names the policy, the rule and the field.

Skipped (naming `make setup-rehearsal`) without the toolchain or the kyverno binary, unless
VCPL_REHEARSAL_REQUIRED=1, which turns the skip into a failure.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from vcpl import paths
from vcpl.rehearsal import admission, controlplane
from vcpl.rehearsal.admission import Kyverno
from vcpl.rehearsal.controlplane import ControlPlane, ToolchainMissing

VENUE, ENV = "cme", "prod"
REQUIRED_ENV = "VCPL_REHEARSAL_REQUIRED"
MANAGER = "vcpl-rehearsal"
Doc = dict[str, Any]


def _absent() -> str:
    missing = controlplane.missing_binaries() + admission.missing()
    if missing:
        return (f"cluster rehearsal: {', '.join(missing)} not installed (binaries in {controlplane.bin_dir()}): "
                "run `make setup-rehearsal`")
    if not shutil.which("openssl"):
        return "cluster rehearsal: the openssl CLI is not installed (it makes the throwaway CA)"
    return ""


def gate() -> None:
    reason = _absent()
    if reason:
        if os.environ.get(REQUIRED_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRED_ENV}=1: a missing toolchain is a failure)", pytrace=False)
        pytest.skip(reason)


def as_yaml(docs: list[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def run_ok(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=paths.ROOT)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)}: {proc.stderr.strip()}", pytrace=False)
    return proc.stdout


def is_builtin(doc: Doc) -> bool:
    group = doc["apiVersion"].rsplit("/", 1)[0] if "/" in doc["apiVersion"] else ""
    return "." not in group or group.endswith(".k8s.io")


class Admission:
    def __init__(self, cp: ControlPlane, kyverno: Kyverno, docs: list[Doc], policies: list[str]) -> None:
        self.cp, self.kyverno, self.docs, self.policies = cp, kyverno, docs, policies
        self.sts = next(d for d in docs if d["kind"] == "StatefulSet")
        self.namespace = self.sts["metadata"]["namespace"]
        self.timings: dict[str, float] = {}

    def dry_run(self, docs: list[Doc]) -> subprocess.CompletedProcess[str]:
        return self.cp.kubectl("apply", "--server-side", "--dry-run=server", f"--field-manager={MANAGER}",
                               "-f", "-", input=as_yaml(docs), check=False)


@pytest.fixture(scope="module")
def adm() -> Iterator[Admission]:
    gate()
    docs = [d for d in yaml.safe_load_all(run_ok([sys.executable, "-m", "vcpl", "build", VENUE, ENV])) if d]
    policies = run_ok([str(paths.ROOT / ".tools" / "bin" / "kustomize"), "build", "policies/kyverno-enforce"])
    t0 = time.monotonic()
    with ControlPlane() as cp:
        t1 = time.monotonic()
        with Kyverno(cp) as kyverno:
            t2 = time.monotonic()
            names = kyverno.apply_policies(policies)
            a = Admission(cp, kyverno, docs, names)
            a.timings.update({"control plane": t1 - t0, **kyverno.timings, "policies ready": time.monotonic() - t2})
            yield a
    print(f"\nkyverno admission timings (s): {json.dumps({k: round(v, 1) for k, v in a.timings.items()})}")


# --- helpers: the overlay applied or not ---------------------------------------------------------------
def ensure_admitted(adm: Admission) -> None:
    """Apply the overlay for real (idempotent): the Namespace, its other built-in objects (Services,
    RBAC, NetworkPolicies, ConfigMaps, CronJobs, ServiceAccounts...), then the StatefulSet."""
    namespaces = [d for d in adm.docs if d["kind"] == "Namespace"]
    others = [d for d in adm.docs if is_builtin(d) and d["kind"] not in ("Namespace", "StatefulSet")]
    for docs in (namespaces, others, [adm.sts]):
        proc = adm.cp.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "-f", "-",
                              input=as_yaml(docs), check=False)
        assert proc.returncode == 0, f"{[d['kind'] for d in docs]} refused:\n{proc.stderr}"


def ensure_absent(adm: Admission) -> None:
    """No live StatefulSet, so a dry-run is a CREATE; its Namespace exists. The StatefulSet cannot
    be deleted once applied (see test_delete_is_not_blocked), so the CREATE tests come first."""
    namespaces = [d for d in adm.docs if d["kind"] == "Namespace"]
    adm.cp.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "-f", "-", input=as_yaml(namespaces))
    name = adm.sts["metadata"]["name"]
    if adm.cp.kubectl("get", "statefulset", "-n", adm.namespace, name, check=False).returncode == 0:
        pytest.skip(f"statefulset {name} already applied by an earlier test: run this file in order")


def test_policies_are_enforced_through_loopback_webhooks(adm: Admission) -> None:
    gate()
    live = adm.cp.get_json("clusterpolicies.kyverno.io")["items"]
    assert {p["metadata"]["name"] for p in live} == set(adm.policies)
    for p in live:
        actions = {r.get("validate", {}).get("failureAction") for r in p["spec"]["rules"]}
        assert actions == {"Enforce"}, (p["metadata"]["name"], actions)
    urls = adm.kyverno.webhook_urls()
    assert urls[admission.RESOURCE_VALIDATING_WEBHOOK], urls
    for name, hooks in urls.items():
        assert all(u.startswith(f"https://127.0.0.1:{adm.kyverno.port}/") for u in hooks), (name, hooks)


# --- refused -------------------------------------------------------------------------------------------------
def _container(sts: Doc) -> Doc:
    return sts["spec"]["template"]["spec"]["containers"][0]


def add_capability(sts: Doc) -> None:
    _container(sts).setdefault("securityContext", {}).setdefault("capabilities", {})["add"] = ["NET_ADMIN"]


def writable_root(sts: Doc) -> None:
    _container(sts).setdefault("securityContext", {})["readOnlyRootFilesystem"] = False


def tag_without_digest(sts: Doc) -> None:
    c = _container(sts)
    c["image"] = c["image"].split("@", 1)[0]


def drop_owner_label(sts: Doc) -> None:
    del sts["metadata"]["labels"]["vcpl.dev/owner-team"]


def literal_password(sts: Doc) -> None:
    _container(sts).setdefault("env", []).append({"name": "FIX_PASSWORD", "value": "hunter2hunter2"})


C0 = r"spec\.template\.spec\.containers\[0\]"
# change, policy, rule (Pod rules reach StatefulSets as autogen-<rule>), field path in the message
REFUSALS: list[tuple[Callable[[Doc], None], str, str, str]] = [
    (add_capability, "restrict-pod-security", "no-capabilities-in-venue-namespaces", C0 + r"\.securityContext\.capabilities\.add"),
    (writable_root, "restrict-pod-security", "require-read-only-root", C0 + r"\.securityContext\.readOnlyRootFilesystem"),
    (tag_without_digest, "require-image-digest", "prod-images-by-digest", C0 + r"\.image"),
    (drop_owner_label, "require-venue-labels", "venue-labels", r"metadata\.labels\[vcpl\.dev/owner-team\]"),
    (literal_password, "disallow-literal-secrets", "no-literal-secret-env", C0 + r"\.env\[\d+\]"),
]
IDS = [r[0].__name__ for r in REFUSALS]


def refusal(adm: Admission, change: Callable[[Doc], None], policy: str) -> str:
    sts = copy.deepcopy(adm.sts)
    change(sts)
    proc = adm.dry_run([sts])
    assert proc.returncode != 0, f"{change.__name__}: admitted, expected {policy} to refuse it"
    assert 'admission webhook "validate.kyverno.svc-fail" denied the request' in proc.stderr, proc.stderr
    assert re.search(rf"^{re.escape(policy)}:\s*$", proc.stderr, re.M), f"policy {policy} not named:\n{proc.stderr}"
    return proc.stderr


@pytest.mark.parametrize("change,policy,rule,field", REFUSALS, ids=IDS)
def test_careless_new_statefulset_is_refused(adm: Admission, change: Callable[[Doc], None], policy: str, rule: str,
                                             field: str) -> None:
    """CREATE: the StatefulSet does not exist yet; the refusal names policy, rule and field."""
    gate()
    ensure_absent(adm)
    err = refusal(adm, change, policy)
    assert re.search(rf"^\s+(autogen-)?{re.escape(rule)}: '?{field}", err, re.M), f"rule {rule} / field not named:\n{err}"


# --- admitted, then careless updates -------------------------------------------------------------------
def test_compliant_overlay_is_admitted(adm: Admission) -> None:
    """The overlay's built-in objects are admitted, and so is the pod the StatefulSet controller
    then creates (Kyverno's Pod rules: restricted profile, read-only root, capabilities...)."""
    gate()
    t0 = time.monotonic()
    ensure_admitted(adm)
    name = adm.sts["metadata"]["name"]
    assert adm.cp.get_json("statefulset", "-n", adm.namespace, name)["metadata"]["uid"]
    deadline = time.monotonic() + 60
    while adm.cp.kubectl("get", "pod", "-n", adm.namespace, f"{name}-0", "-o", "name", check=False).returncode != 0:
        if time.monotonic() > deadline:
            events = adm.cp.kubectl("get", "events", "-n", adm.namespace, check=False).stdout[-2000:]
            pytest.fail(f"pod {name}-0 never created:\n{events}\nkyverno log: {adm.kyverno.log_tail()}")
        time.sleep(0.5)
    adm.timings["admitted"] = time.monotonic() - t0


# Kyverno v1.19 evaluates an Enforce rule on UPDATE against the old object as well and skips it when
# both fail (validate.allowExistingViolations, default true). The rule-level `context` variables are
# NOT re-evaluated for the old object, so a rule whose conditions read context variables computed
# from request.object judges the new object twice, "both fail", and the rule is skipped: the change
# is admitted. The podSecurity rule (no context) is unaffected. Setting
# `validate.allowExistingViolations: false` on these rules makes the refusals work (verified by hand).


@pytest.mark.parametrize("change,policy,rule,field", REFUSALS, ids=IDS)
def test_careless_update_is_refused(adm: Admission, change: Callable[[Doc], None], policy: str, rule: str,
                                    field: str) -> None:
    """UPDATE: the compliant StatefulSet is live; the careless change to it must be refused too.
    Every validate rule sets allowExistingViolations: false: with Kyverno's default, a rule whose
    context variables come from the new object judged the old one with them, and skipped."""
    gate()
    ensure_admitted(adm)
    err = refusal(adm, change, policy)
    assert re.search(rf"^\s+(autogen-)?{re.escape(rule)}: '?{field}", err, re.M), f"rule {rule} / field not named:\n{err}"


def test_delete_is_not_blocked(adm: Admission) -> None:
    """Deleting the gateway's StatefulSet (decommissioning a venue) must not be refused. It is: the
    resource webhook also receives DELETE, where request.object is null, and rules that do not
    restrict their operations to CREATE/UPDATE either fail (labels missing) or error (a context
    variable evaluates to nil), and an error in an Enforce rule blocks the request."""
    gate()
    ensure_admitted(adm)
    proc = adm.cp.kubectl("delete", "statefulset", "-n", adm.namespace, adm.sts["metadata"]["name"],
                          "--dry-run=server", check=False)
    # Every rule matches operations [CREATE, UPDATE] only.
    assert proc.returncode == 0, proc.stderr


def test_namespace_defaults_are_not_blocked(adm: Admission) -> None:
    """The controller manager's own objects in a venue namespace (the `default` ServiceAccount and
    the `kube-root-ca.crt` ConfigMap) must be admitted. require-venue-labels matches every
    ServiceAccount and ConfigMap in venue-* and refuses them (they carry no vcpl labels)."""
    gate()
    ensure_admitted(adm)
    deadline = time.monotonic() + 20
    while True:
        sa = adm.cp.kubectl("get", "serviceaccount", "default", "-n", adm.namespace, check=False).returncode == 0
        cm = adm.cp.kubectl("get", "configmap", "kube-root-ca.crt", "-n", adm.namespace, check=False).returncode == 0
        if sa and cm:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    log = adm.kyverno.log_path.read_text(errors="replace")
    blocked = sorted(set(re.findall(r"blocking admission request .*?kind=(\w+) .*?name=(\S+) .*?policy=(\S+)", log)))
    pytest.fail(f"missing default ServiceAccount={sa} kube-root-ca.crt={cm}; Kyverno blocked {blocked} "
                "(require-venue-labels excludes exactly these two names)")


# --- no toolchain needed ---------------------------------------------------------------------------------------
def test_missing_kyverno_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(controlplane.BIN_ENV, str(tmp_path))
    monkeypatch.setenv(admission.CRDS_ENV, str(tmp_path / "crds"))
    assert admission.missing(tmp_path) == ["kyverno", f"the Kyverno CRDs ({tmp_path / 'crds'})"]
    cp = ControlPlane(bin_directory=tmp_path)
    with pytest.raises(ToolchainMissing) as err:
        with Kyverno(cp):
            pass
    assert "kyverno" in str(err.value) and "make setup-rehearsal" in str(err.value)
