"""The policy gate: render every overlay once, run kyverno and conftest over the whole set in one
launch each, and report failures grouped by venue / environment / object / rule with a fix.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcpl import paths, render, runbook, yamlio
from vcpl.errors import VcplError

KYVERNO_POLICIES = paths.ROOT / "policies" / "kyverno"
REGO_POLICIES = paths.ROOT / "policies" / "rego"
_FIX = re.compile(r"\s*Fix:\s*(?P<fix>.*)$", re.S)
_FIELD = re.compile(r"^(?P<field>[A-Za-z][\w.\[\]/-]*(?:\[[^\]]*\])?[\w.\[\]/-]*):\s")
# Pod Security failures name the field inside their message.
_PSS_FIELD = re.compile(r"field error list: \[(?P<field>[\w.\[\]]+) is forbidden")


@dataclass(frozen=True)
class Finding:
    engine: str
    policy: str
    rule: str
    venue: str
    environment: str
    obj: str
    field: str
    message: str
    fix: str


@dataclass
class GateResult:
    findings: list[Finding]
    overlays: list[tuple[str, str]]
    rendered: dict[tuple[str, str], Path]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


def render_all(out: Path, overlays: list[tuple[str, str]] | None = None) -> dict[tuple[str, str], Path]:
    files = {}
    for env, venue in overlays or render.overlays():
        target = out / env / f"{venue}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render.build(env, venue), encoding="utf-8")
        files[(env, venue)] = target
    return files


def write_policy_data(out: Path) -> Path:
    """Run books as conftest data: data.runbooks[<venue>]."""
    data = {"runbooks": {venue: runbook.load_venue(venue) for venue in paths.venue_ids()}}
    target = out / "data" / "runbooks.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    return target.parent


def _index(files: dict[tuple[str, str], Path]) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(kind, namespace, name) of every rendered object -> (env, venue) of its overlay."""
    index = {}
    for (env, venue), path in files.items():
        for doc in yamlio.load_all(path.read_text(encoding="utf-8")):
            meta = doc["metadata"]
            index[(doc["kind"], meta.get("namespace", ""), meta["name"])] = (env, venue)
    return index


def _split_fix(message: str) -> tuple[str, str]:
    match = _FIX.search(message)
    if not match:
        return message.strip(), ""
    return message[: match.start()].strip(), " ".join(match.group("fix").split())


def run_kyverno(files: list[Path], index: dict[tuple[str, str, str], tuple[str, str]]) -> list[Finding]:
    policies = sorted(KYVERNO_POLICIES.glob("*/*.yaml"))
    cmd = [render.tool("kyverno"), "apply", *map(str, policies), "--policy-report"]
    for path in files:
        cmd += ["--resource", str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    start = result.stdout.find("apiVersion:")
    if start < 0:
        raise VcplError(f"kyverno apply produced no policy report:\n{result.stderr.strip()}")
    report = yaml.safe_load(result.stdout[start:])
    findings = []
    for item in report.get("results") or []:
        if item.get("result") not in ("fail", "error"):
            continue
        for res in item.get("resources", []):
            env, venue = index.get((res["kind"], res.get("namespace", ""), res["name"]), ("?", "?"))
            text, fix = _split_fix(" ".join(item.get("message", "").split()))
            match = _FIELD.match(text) or _PSS_FIELD.search(text)
            findings.append(
                Finding(
                    engine="kyverno",
                    policy=item["policy"],
                    rule=item["rule"],
                    venue=venue,
                    environment=env,
                    obj=f"{res['kind']}/{res['name']}",
                    field=match.group("field") if match else "spec",
                    message=text,
                    fix=fix or "see policies/kyverno/" + item["policy"] + "/README.md",
                )
            )
    return findings


def _without_prefix(message: str, field_path: str) -> str:
    """Rego messages start with `[rule] venue/env Kind/name field:`; the report prints those already."""
    marker = f"{field_path}: "
    if message.startswith("[") and marker in message:
        return message.split(marker, 1)[1]
    return message


def run_conftest(files: list[Path], data_dir: Path) -> list[Finding]:
    cmd = [
        render.tool("conftest"), "test", "--combine", "--all-namespaces", "--no-color",
        "-p", str(REGO_POLICIES), "--data", str(data_dir), "-o", "json", *map(str, files),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    try:
        outcome = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise VcplError(f"conftest failed:\n{result.stdout.strip()}\n{result.stderr.strip()}") from None
    findings = []
    for entry in outcome:
        for failure in entry.get("failures") or []:
            details = (failure.get("metadata") or {}).get("details") or {}
            findings.append(
                Finding(
                    engine="rego",
                    policy=entry.get("namespace", ""),
                    rule=details.get("rule", "?"),
                    venue=details.get("venue", "?"),
                    environment=details.get("environment", "?"),
                    obj=details.get("object", "?"),
                    field=details.get("field", "?"),
                    message=_without_prefix(failure["msg"], details.get("field", "")),
                    fix=details.get("fix", ""),
                )
            )
    return findings


def check(out: Path, rendered: dict[tuple[str, str], Path] | None = None) -> GateResult:
    """Run the whole gate. `rendered` lets a caller check manifests it rendered (or altered) itself."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    files = rendered if rendered is not None else render_all(out / "rendered")
    seconds["render"] = time.perf_counter() - started
    data_dir = write_policy_data(out)
    ordered = [files[key] for key in sorted(files)]
    started = time.perf_counter()
    findings = run_kyverno(ordered, _index(files))
    seconds["kyverno"] = time.perf_counter() - started
    started = time.perf_counter()
    findings += run_conftest(ordered, data_dir)
    seconds["conftest"] = time.perf_counter() - started
    findings.sort(key=lambda f: (f.venue, f.environment, f.obj, f.rule, f.message))
    return GateResult(findings=findings, overlays=sorted(files), rendered=files, seconds=seconds)


def report(result: GateResult) -> str:
    if result.ok:
        return f"gate passed: {len(result.overlays)} overlays, kyverno and conftest found nothing"
    grouped: dict[tuple[str, str], dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in result.findings:
        grouped[(finding.venue, finding.environment)][finding.obj].append(finding)
    lines = [f"gate FAILED: {len(result.findings)} finding(s)"]
    for (venue, env), objects in sorted(grouped.items()):
        lines.append(f"\n{venue} / {env}")
        for obj, findings in sorted(objects.items()):
            lines.append(f"  {obj}")
            for f in findings:
                lines.append(f"    [{f.engine}:{f.rule}] {f.field}: {f.message}")
                if f.fix:
                    lines.append(f"      fix: {f.fix}")
    return "\n".join(lines)
