"""The mutation suite (tests/mutation): dangerous changes, made the way a careless engineer makes
them, applied to every shipped overlay where they do harm. The gate must catch at least 98% of
them, each with a finding that names venue, environment, object and field, and
policies/MUTATIONS.md must be the table of this very run.

The whole suite runs once per module (one `gate.evaluate` call for every mutant).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mutation import harness, operators, table
from mutation.catalogue import Catalogue
from mutation.tree import RENDER_INPUTS, Tree

THRESHOLD = 0.98
ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(harness.ROOT)


@pytest.fixture(scope="module")
def report() -> harness.Report:
    return harness.run()


def _listing(outcomes: list[harness.Outcome]) -> str:
    return "\n".join(f"  {o.verdict:10} {o.mutant.operator} on {', '.join(f'{e}/{v}' for e, v in o.mutant.overlays)}"
                     + (f"\n             {o.evidence.splitlines()[0]}" if o.evidence else "") for o in outcomes)


def test_operators_are_named_and_say_what_harm_they_do() -> None:
    assert len(operators.OPERATORS) >= 40
    for op in operators.OPERATORS:
        assert ID.match(op.id), f"{op.id}: operator ids are kebab-case"
        assert op.site in operators.SITES, f"{op.id}: unknown site {op.site}"
        assert op.harm and "\n" not in op.harm and len(op.harm) < 220, f"{op.id}: the harm is one line"


def test_every_operator_applies_to_some_shipped_overlay(catalogue: Catalogue) -> None:
    planned = {p.operator for p in operators.plans(catalogue)}
    idle = [op.id for op in operators.OPERATORS if op.id not in planned]
    assert not idle, f"operators that apply nowhere: {idle}"


def test_every_site_has_operators() -> None:
    assert {op.site for op in operators.OPERATORS} == set(operators.SITES)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for name in RENDER_INPUTS:
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_every_edit_changes_the_copy_and_restore_undoes_it(catalogue: Catalogue, tmp_path: Path) -> None:
    tree = Tree.copy_of(harness.ROOT, tmp_path / "copy")
    pristine = _digest(tree.root)
    for plan in operators.plans(catalogue):
        operators.operator(plan.operator).edit(tree, catalogue, plan)
        assert tree.changed(), f"{plan.case_id}: the edit changed no file"
        tree.restore()
    assert _digest(tree.root) == pristine, "restore left a mutation behind"


def test_the_gate_catches_at_least_98_percent_of_the_mutants(report: harness.Report) -> None:
    not_caught = [o for o in report.outcomes if o.verdict not in ("caught", "tooling")]
    share = round(report.caught_share, 4)
    assert share >= THRESHOLD, (
        f"{harness.summary(report)}\nthe gate lets these through:\n{_listing(not_caught)}")


def test_caught_mutants_are_reported_with_venue_environment_object_and_field(report: harness.Report) -> None:
    vague = [o for o in report.outcomes if o.verdict == "unspecific"]
    assert not vague, f"findings that do not say where (venue, environment, object, field):\n{_listing(vague)}"


def test_no_mutation_is_broken(report: harness.Report) -> None:
    broken = [o for o in report.outcomes if o.verdict == "error"]
    assert not broken, "mutations that failed or changed nothing:\n" + "\n".join(
        f"  {o.mutant.id}: {o.evidence.strip().splitlines()[-1]}" for o in broken)


def test_the_baseline_catalogue_passes_the_gate(report: harness.Report) -> None:
    """Mutants are judged by the findings they add; a dirty baseline would hide some of them."""
    assert not report.baseline_findings, "the shipped catalogue has findings:\n" + "\n".join(
        f"  {harness.describe(f)}" for f in report.baseline_findings[:20])


def test_the_mutation_table_is_in_sync(report: harness.Report) -> None:
    expected = table.render(report)
    actual = table.TABLE.read_text(encoding="utf-8") if table.TABLE.exists() else ""
    assert actual == expected, "policies/MUTATIONS.md is out of date: run `make mutation-table`"
