"""Security by default: no literal credentials, hardened pods, capabilities only with a reason."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT
from vcpl import render

SECRET_NAME = re.compile(r"(pass(word|phrase)?|secret|token|api[-_]?key|private[-_]?key|psk)", re.I)
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# key = value or key: value, where the value is a literal rather than a template or a file path.
LITERAL_ASSIGNMENT = re.compile(r"\b(password|passphrase|secret|psk|api[_-]?key)[ \t]*[=:][ \t]*\"?(?!\{\{)[A-Za-z0-9+/]{8,}", re.I)
JUSTIFICATION = "vcpl.dev/capabilities-justification"
# Negative fixtures of the secret policies must look like secrets; they may hold only stubs.
POLICY_FIXTURES = ("policies/kyverno/disallow-literal-secrets/.kyverno-test/",)
PEM_BODY = re.compile(r"PRIVATE KEY-----\s*\n(?P<body>[A-Za-z0-9+/=\n]*)")


def _containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def test_no_literal_secret_in_git() -> None:
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix not in {".yaml", ".json", ".cfg", ".conf", ".py", ".md", ".txt", ""}:
            continue
        text = path.read_text(errors="ignore")
        if name.startswith(POLICY_FIXTURES):
            bodies = [m.group("body").replace("\n", "") for m in PEM_BODY.finditer(text)]
            if any(len(body) > 16 for body in bodies):
                offenders.append(f"{name} (a policy fixture may only hold a stub key)")
            continue
        if PRIVATE_KEY_BLOCK.search(text) or (path.suffix != ".py" and LITERAL_ASSIGNMENT.search(text)):
            offenders.append(name)
    assert not offenders, f"literal secrets: {offenders}"


def test_the_secret_scan_can_fail() -> None:
    assert LITERAL_ASSIGNMENT.search('password = "hunter2hunter2"')
    assert LITERAL_ASSIGNMENT.search("secret: c2VjcmV0dmFsdWU=")
    assert not LITERAL_ASSIGNMENT.search('secret = "{{ .psk }}"')
    assert PRIVATE_KEY_BLOCK.search("-----BEGIN EC " + "PRIVATE KEY-----")


@pytest.mark.parametrize("env,venue", render.overlays(), ids=[f"{e}/{v}" for e, v in render.overlays()])
def test_rendered_overlay_is_hardened(rendered_overlays, env: str, venue: str) -> None:
    docs = rendered_overlays[(env, venue)]
    assert not [d for d in docs if d["kind"] == "Secret"], "a Secret object is rendered; use an ExternalSecret"
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            for key, value in doc.get("data", {}).items():
                assert not PRIVATE_KEY_BLOCK.search(value), f"ConfigMap/{doc['metadata']['name']} {key} holds a private key"
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    template = sts["spec"]["template"]
    pod = template["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not pod.get("hostNetwork")
    for container in _containers(pod):
        where = f"container {container['name']}"
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
        assert not sc.get("privileged"), where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        if sc["capabilities"].get("add") or sc.get("runAsUser") == 0:
            assert JUSTIFICATION in template["metadata"].get("annotations", {}), f"{where} adds capabilities without {JUSTIFICATION}"
        resources = container["resources"]
        assert resources["requests"] == resources["limits"], f"{where}: requests must equal limits"
        for env_var in container.get("env", []):
            if SECRET_NAME.search(env_var["name"]):
                assert "value" not in env_var, f"{where}: env {env_var['name']} carries a literal value"
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/var/lib/venue-gateway"] in claims, "session state (sequence numbers) must be on a PVC"
    deny = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny")
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
