"""Apply every planned mutation in private copies of the repository, gate all of them in one
`gate.evaluate` call, and judge each mutant.

Work is split so that the expensive part, rendering, runs in a small process pool (each worker
owns one copy of the repository, edits it, lets the gate render the overlays the edit reaches,
and restores it), while the gate sees every case at once and evaluates each distinct overlay once.
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import operators
from .catalogue import Catalogue
from .operators import Mutant, Plan
from .tree import Tree

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
BASELINE = "baseline"
# A finding that names only these says nothing a person can act on.
VAGUE_FIELDS = {"", "?", "spec", "metadata", "data"}
VAGUE_OBJECTS = {"", "?"}

Key = tuple[str, str]


@dataclass
class CaseResult:
    case_id: str
    inputs: list[Any] = field(default_factory=list)   # gate.OverlayInput of every overlay the edit reaches
    tooling: str = ""                                 # a render or generate refusal, one message
    error: str = ""                                   # the mutation itself broke: a bug in the suite


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    verdict: str      # caught | tooling | unspecific | missed | error
    evidence: str     # the finding, refusal or error that decided it


@dataclass
class Report:
    outcomes: list[Outcome]
    baseline_findings: list[Any]
    seconds: dict[str, float]

    def count(self, verdict: str) -> int:
        return sum(1 for o in self.outcomes if o.verdict == verdict)

    @property
    def caught_share(self) -> float:
        caught = self.count("caught") + self.count("tooling")
        return caught / len(self.outcomes) if self.outcomes else 0.0


# ---------------------------------------------------------------------------------------------
# Worker side


_WORKER: dict[str, Any] = {}


def _init_worker(source: str, scratch: str, cat: Catalogue) -> None:
    _WORKER["tree"] = Tree.copy_of(Path(source), Path(scratch) / f"worker-{os.getpid()}")
    _WORKER["cat"] = cat


def regenerate(tree: Tree, venues: tuple[str, ...]) -> None:
    """What `vcpl generate` does for these venues, written into the copy."""
    from vcpl import generate, runbook

    platform = generate.load_platform(tree.path("platform/platform.yaml"))
    for venue in venues:
        folder = tree.path(f"venues/{venue}")
        book = runbook.load(folder / "runbook.yaml")
        for path, text in generate.outputs_for(book, platform, folder / "generated", f"venues/{venue}/runbook.yaml").items():
            tree.write(str(path.relative_to(tree.root)), text)


def _platform_envs_changed(tree: Tree) -> set[str]:
    before = yaml.safe_load(tree.original("platform/platform.yaml") or b"") or {}
    after = tree.read_yaml("platform/platform.yaml") or {}
    envs = set(before.get("environments") or {}) | set(after.get("environments") or {})
    return {e for e in envs if (before.get("environments") or {}).get(e) != (after.get("environments") or {}).get(e)}


def affected(cat: Catalogue, tree: Tree, changed: list[str]) -> list[Key]:
    """Every overlay whose render, run book or platform facts a set of changed files reaches."""
    hit: set[Key] = set()
    platform_envs = _platform_envs_changed(tree) if "platform/platform.yaml" in changed else set()
    for rel in changed:
        parts = rel.split("/")
        for ov in cat.overlays:
            if parts[0] == "base":
                hit.add(ov.key)
            elif parts[0] == "overlays" and parts[1:3] == [ov.env, ov.venue]:
                hit.add(ov.key)
            elif parts[0] == "venues" and parts[1] == ov.venue:
                if parts[2] == "generated":
                    if parts[3] == ov.env:
                        hit.add(ov.key)
                elif parts[2] in ("runbook.yaml", "kustomization.yaml"):
                    hit.add(ov.key)
            elif parts[0] == "components" and "/".join(parts[1:-1]) in ov.components:
                hit.add(ov.key)
            elif parts[0] == "platform" and ov.env in platform_envs:
                hit.add(ov.key)
    return [o.key for o in cat.overlays if o.key in hit]


def _clean(message: str, tree: Tree) -> str:
    return message.replace(f"{tree.root}/", "").replace(str(tree.root), ".").strip()


def run_case(plan: Plan) -> CaseResult:
    from vcpl import gate
    from vcpl.errors import VcplError

    tree: Tree = _WORKER["tree"]
    cat: Catalogue = _WORKER["cat"]
    try:
        operators.operator(plan.operator).edit(tree, cat, plan)
        if plan.regenerate:
            regenerate(tree, plan.regenerate)
        reached = affected(cat, tree, tree.changed())
        # Only the overlays the mutants are judged on are rendered: others the edit also reaches
        # (a component's dev overlays, say) would cost renders and decide nothing. An overlay a
        # mutant is judged on may be left untouched (the other venue of a shared CompID).
        judged = [k for k in plan.overlays if k in reached]
        untouched = [k for k in plan.overlays if k not in reached]
        if not judged or (untouched and not plan.together):
            return CaseResult(plan.case_id, error=f"the edit does not reach {untouched} (changed: {tree.changed()})")
        return CaseResult(plan.case_id, inputs=gate.load_overlays(tree.root, judged))
    except VcplError as exc:
        return CaseResult(plan.case_id, tooling=_clean(str(exc), tree))
    except Exception:  # noqa: BLE001 - a broken operator is reported, not raised
        return CaseResult(plan.case_id, error=_clean(traceback.format_exc(), tree))
    finally:
        tree.restore()


# ---------------------------------------------------------------------------------------------
# Main side


def _fingerprint(item: Any) -> str:
    digest = getattr(item, "digest", None)
    return digest if isinstance(digest, str) else repr(item)


def _specific(finding: Any) -> bool:
    return (finding.obj or "").strip() not in VAGUE_OBJECTS and (finding.field or "").strip() not in VAGUE_FIELDS


def describe(finding: Any) -> str:
    return f"{finding.environment}/{finding.venue} {finding.obj} {finding.field} [{finding.policy}:{finding.rule}] {finding.message}"


def _names_a_file(message: str) -> bool:
    return any(token in message for token in (".yaml", "overlays/", "venues/", "components/", "platform/", "base/"))


def judge(mutant: Mutant, result: CaseResult, new_findings: list[Any]) -> Outcome:
    if result.error:
        return Outcome(mutant, "error", result.error)
    if result.tooling:
        verdict = "tooling" if _names_a_file(result.tooling) else "unspecific"
        return Outcome(mutant, verdict, result.tooling.splitlines()[0] if result.tooling else "")
    named = [f for f in new_findings if (f.environment, f.venue) in mutant.overlays]
    specific = [f for f in named if _specific(f)]
    if specific:
        return Outcome(mutant, "caught", describe(specific[0]))
    if new_findings:
        return Outcome(mutant, "unspecific", describe((named or new_findings)[0]))
    return Outcome(mutant, "missed", "")


def _cpu() -> float:
    """CPU seconds of this process and of every child it has reaped (kustomize, kyverno, conftest, workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(root: Path = ROOT, workers: int = WORKERS, only: list[str] | None = None) -> Report:
    """Plan, apply and gate every mutation (or the operators named in `only`)."""
    from vcpl import gate

    seconds: dict[str, float] = {}
    started, cpu = time.perf_counter(), _cpu()
    cat = Catalogue.load(root)
    plans = [p for p in operators.plans(cat) if not only or p.operator in only]
    baseline = gate.load_overlays(root)
    seconds["baseline"] = time.perf_counter() - started
    seconds["baseline cpu"], cpu = _cpu() - cpu, _cpu()

    started = time.perf_counter()
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with tempfile.TemporaryDirectory(prefix="vcpl-mutation-") as scratch, \
            ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(str(root), scratch, cat)) as pool:
        results = {r.case_id: r for r in pool.map(run_case, plans, chunksize=4)}
    seconds["mutate+render"] = time.perf_counter() - started
    seconds["mutate+render cpu"], cpu = _cpu() - cpu, _cpu()

    by_key = {(i.env, i.venue): i for i in baseline}
    base_prints = {k: _fingerprint(i) for k, i in by_key.items()}
    # Case names are plain tokens: the gate may use them in file names.
    cases: dict[str, list[Any]] = {BASELINE: baseline}
    names: dict[str, str] = {}
    for number, plan in enumerate(plans):
        result = results[plan.case_id]
        if not result.inputs:
            continue
        changed = {(i.env, i.venue): i for i in result.inputs}
        if all(_fingerprint(i) == base_prints[k] for k, i in changed.items()):
            result.error = "no-op: every overlay the edit reaches renders and loads exactly as before"
            continue
        names[plan.case_id] = f"mutant{number:04d}"
        cases[names[plan.case_id]] = [changed.get(k, item) for k, item in by_key.items()]

    started = time.perf_counter()
    gate_seconds: dict[str, float] = {}
    findings = gate.evaluate(cases, gate_seconds)
    seconds["gate"] = time.perf_counter() - started
    seconds["gate cpu"] = _cpu() - cpu
    seconds.update({f"gate:{k}": v for k, v in gate_seconds.items()})

    base = set(findings.get(BASELINE, []))
    outcomes = []
    for plan in plans:
        result = results[plan.case_id]
        new = [f for f in findings.get(names.get(plan.case_id, ""), []) if f not in base]
        outcomes += [judge(m, result, new) for m in plan.mutants()]
    return Report(outcomes=outcomes, baseline_findings=sorted(base, key=describe), seconds=seconds)


def summary(report: Report) -> str:
    counts = Counter(o.verdict for o in report.outcomes)
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    return (f"{len(report.outcomes)} mutants: " + ", ".join(f"{k} {counts[k]}" for k in ("caught", "tooling", "unspecific", "missed", "error"))
            + f"; caught {report.caught_share:.1%}; baseline findings {len(report.baseline_findings)}; {timing}")
