"""The policy gate: every rule's own suite passes, every rule has a fixture it rejects and one it
accepts, the shipped library passes the gate, and each of the nine ways to break an overlay is
caught with venue, environment, object and field."""
from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT, find
from vcpl import gate, matrix, render, yamlio


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True)


def test_kyverno_test_suites_pass() -> None:
    result = _run(render.tool("kyverno"), "test", "policies/kyverno", "--require-tests")
    summary = [line for line in result.stdout.splitlines() if "Test Summary" in line]
    assert result.returncode == 0 and summary and " 0 tests failed" in summary[-1], result.stdout[-3000:] + result.stderr


def test_rego_unit_tests_pass() -> None:
    result = _run(render.tool("conftest"), "verify", "-p", "policies/rego", "--no-color")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    counts = re.search(r"(\d+) tests, (\d+) passed, .* (\d+) failures", result.stdout)
    assert counts and int(counts.group(1)) > 0 and counts.group(1) == counts.group(2) and counts.group(3) == "0", result.stdout[-2000:]


def test_every_rule_rejects_and_accepts_a_fixture() -> None:
    rows = matrix.rows()
    assert any(r.engine == "rego" for r in rows) and any(r.engine == "kyverno" for r in rows)
    missing = [f"{r.engine}:{r.policy}/{r.rule}" for r in rows if not r.rejects or not r.accepts]
    assert not missing, f"rules without a rejecting and an accepting fixture: {missing}"


def test_policy_matrix_is_in_sync() -> None:
    assert matrix.MATRIX.read_text() == matrix.render_matrix(), "run `make policy-matrix`"


def test_enforce_variant_switches_every_rule() -> None:
    audit = render.build_dir(ROOT / "policies" / "kyverno")
    enforce = render.build_dir(ROOT / "policies" / "kyverno-enforce")
    rules = audit.count("failureAction: Audit")
    assert rules == len(matrix.kyverno_rows()) and "Enforce" not in audit
    assert enforce.count("failureAction: Enforce") == rules and "Audit" not in enforce


@pytest.fixture(scope="module")
def shipped_gate(tmp_path_factory) -> gate.GateResult:
    return gate.check(tmp_path_factory.mktemp("gate"))


def test_shipped_library_passes_the_gate(shipped_gate: gate.GateResult) -> None:
    assert shipped_gate.ok, gate.report(shipped_gate)
    assert len(shipped_gate.overlays) == len(render.overlays())


Docs = list[dict[str, Any]]


def _gateway_json(docs: Docs, edit: Callable[[dict[str, Any]], None]) -> None:
    cm = find(docs, "ConfigMap", "venue-gateway")
    config = json.loads(cm["data"]["gateway.json"])
    edit(config)
    cm["data"]["gateway.json"] = json.dumps(config)


def _container(docs: Docs) -> dict[str, Any]:
    return find(docs, "StatefulSet", "venue-gateway")["spec"]["template"]["spec"]["containers"][0]


def _literal_token(docs: Docs) -> None:
    _container(docs).setdefault("env", []).append({"name": "VENUE_API_TOKEN", "value": "abcd1234abcd1234"})


def _open_egress(docs: Docs) -> None:
    find(docs, "NetworkPolicy", "venue-egress")["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})


def _plaintext_over_internet(docs: Docs) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["services"][1]["endpoints"][0]["transport"] = "tcp"
    _gateway_json(docs, edit)


def _drop_feed_policy(docs: Docs) -> None:
    docs.remove(find(docs, "MultiNetworkPolicy", "feed-lines"))


def _heartbeat_out_of_bounds(docs: Docs) -> None:
    cm = find(docs, "ConfigMap", "fix-session")
    cm["data"]["session.cfg"] = cm["data"]["session.cfg"].replace("HeartBtInt=10", "HeartBtInt=400")


def _latest_image(docs: Docs) -> None:
    _container(docs)["image"] = "registry.vcpl.dev/connectivity/ws-gateway:latest"


def _extra_capability(docs: Docs) -> None:
    _container(docs)["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]


def _no_alert_rules(docs: Docs) -> None:
    for rule in [d for d in docs if d["kind"] == "PrometheusRule"]:
        docs.remove(rule)


def _placeholder_endpoint(docs: Docs) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["services"][0]["endpoints"][0]["host"] = "gateway.example.com"
    _gateway_json(docs, edit)


# (invariant, overlay it breaks, how, the rule that must catch it, the object and field it must name)
BREAKAGES = [
    ("1 literal secret", ("prod", "kraken"), _literal_token, "no-literal-secret-env", "StatefulSet/venue-gateway", "env"),
    ("2 egress", ("prod", "cme"), _open_egress, "egress-no-wildcard", "NetworkPolicy/venue-egress", "egress"),
    ("3 tls", ("prod", "coinbase"), _plaintext_over_internet, "transport-tls-or-private-path", "ConfigMap/venue-gateway", "transport"),
    ("4 multicast", ("prod", "nasdaq"), _drop_feed_policy, "multicast-multinetworkpolicy", "", ""),
    ("5 fix", ("cert", "coinbase"), _heartbeat_out_of_bounds, "fix-heartbeat-bounds", "ConfigMap/fix-session", "HeartBtInt"),
    ("6 supply chain", ("cert", "kraken"), _latest_image, "no-latest-tag", "StatefulSet/venue-gateway", "image"),
    ("7 pod security", ("cert", "cme"), _extra_capability, "only-component-capabilities", "StatefulSet/venue-gateway", "capabilities"),
    ("8 operability", ("cert", "nasdaq"), _no_alert_rules, "operability-monitoring", "", ""),
    ("9 completeness", ("dev", "coinbase"), _placeholder_endpoint, "completeness-no-placeholder", "ConfigMap/venue-gateway", "host"),
]


@pytest.fixture(scope="module")
def broken_gate(tmp_path_factory) -> gate.GateResult:
    """One gate run over the whole library with each breakage applied to a different overlay."""
    out = tmp_path_factory.mktemp("broken")
    files = gate.render_all(out / "rendered")
    overlays = [b[1] for b in BREAKAGES]
    assert len(set(overlays)) == len(overlays), "each breakage needs its own overlay"
    for _, overlay, breaker, *_ in BREAKAGES:
        docs = yamlio.load_all(files[overlay].read_text())
        breaker(docs)
        files[overlay].write_text(yamlio.dump_all(docs))
    return gate.check(out, rendered=files)


@pytest.mark.parametrize("case", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_breaking_an_overlay_fails_the_gate_precisely(broken_gate: gate.GateResult, case) -> None:
    _, (env, venue), _, rule, obj, field = case
    assert not broken_gate.ok
    hits = [f for f in broken_gate.findings if f.rule.endswith(rule) and (f.venue, f.environment) == (venue, env)]
    assert hits, f"{rule} did not fire on {env}/{venue}:\n{gate.report(broken_gate)}"
    for hit in hits:
        assert hit.obj and hit.field and hit.message, hit
        if obj:
            assert hit.obj == obj, hit
        if field:
            assert field in hit.field or field in hit.message, hit
    text = gate.report(broken_gate)
    assert f"{venue} / {env}" in text and hits[0].obj in text and hits[0].field in text


def test_findings_stay_on_the_broken_overlays(broken_gate: gate.GateResult) -> None:
    broken = {b[1] for b in BREAKAGES}
    strays = [f for f in broken_gate.findings if (f.environment, f.venue) not in broken]
    assert not strays, gate.report(gate.GateResult(strays, [], {}))
