"""The policy gate: every rule's own suite passes, every rule has a fixture it rejects and one it
accepts, and the shipped library passes the gate. How well the gate catches changes written
independently of its rules is tests/test_mutation.py's job."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT
from vcpl import gate, matrix, render


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
def shipped_gate() -> gate.GateResult:
    return gate.check()


def test_shipped_library_passes_the_gate(shipped_gate: gate.GateResult) -> None:
    assert shipped_gate.ok, gate.report(shipped_gate)
    assert len(shipped_gate.overlays) == len(render.overlays())
