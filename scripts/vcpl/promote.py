"""Promote a venue from one environment to the next (dev -> cert -> prod).

What moves is the gateway image (name, tag, digest). The run book is one file for every
environment and its version already reaches each overlay's objects through the generated profile
(label vcpl.dev/runbook-version); promotion refuses when the generated files are stale and records
the version in the evidence. Each environment keeps its own endpoints, components and overrides. The target is written, the whole
gate runs, and on any finding for the target the original file is restored: nothing partial stays.
A passing promotion writes an evidence record to commit with the change.
"""
from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import io
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from vcpl import gate, generate, paths, render, runbook, tools
from vcpl.errors import VcplError

NEXT = {"dev": "cert", "cert": "prod"}
EVIDENCE = paths.ROOT / "evidence"


def _yaml() -> YAML:
    rt = YAML()  # round-trip: keeps the overlay's comments and key order
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096  # never fold a digest
    return rt


def _load(path: Path) -> Any:
    return _yaml().load(path.read_text(encoding="utf-8"))


def _dump(data: Any) -> str:
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    return buffer.getvalue()


def _images(kustomization: Any) -> dict[str, dict[str, Any]]:
    return {str(i["name"]): dict(i) for i in kustomization.get("images") or []}


def promoted_overlay(source: Any, target: Any) -> tuple[Any, dict[str, Any]]:
    """The target kustomization with the source's images; nothing else changes."""
    before = _images(target)
    after = _images(source)
    missing = sorted(set(after) - set(before))
    if missing:
        raise VcplError(f"the target overlay has no images: entry for {missing}; expected the same image names as the source")
    for entry in target["images"]:
        promoted = after.get(str(entry["name"]))
        if promoted is None:
            continue
        for key in ("newName", "newTag", "digest"):
            if key in promoted:
                entry[key] = promoted[key]
            elif key in entry:
                del entry[key]
    return target, {"images": {"before": before, "after": _images(target)}}


def _tool_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name, args in (("kustomize", ["version"]), ("kyverno", ["version"]), ("conftest", ["--version"])):
        out = subprocess.run([render.tool(name), *args], capture_output=True, text=True).stdout
        found[name] = " ".join(out.split())[:120]
    found["pinned"] = json.dumps(tools.versions(), sort_keys=True)
    return found


def promote(venue: str, source_env: str, target_env: str, dry_run: bool = False) -> tuple[bool, str]:
    """Returns (passed, report). Writes the target overlay and evidence only when the gate passes."""
    if NEXT.get(source_env) != target_env:
        raise VcplError(f"cannot promote {source_env} -> {target_env}; expected dev -> cert or cert -> prod")
    source_path = paths.overlay_dir(source_env, venue) / "kustomization.yaml"
    target_path = paths.overlay_dir(target_env, venue) / "kustomization.yaml"
    for path in (source_path, target_path):
        if not path.exists():
            raise VcplError(f"{paths.relative(path)}: not found; expected an overlay for {venue}")
    stale = generate.stale(generate.planned())
    if stale:
        raise VcplError("generated files are out of date, so the run book's version has not reached the overlays: run `make generate` first\n" + "\n".join(stale))
    version = runbook.load_venue(venue)["venue"]["runbookVersion"]
    original = target_path.read_text(encoding="utf-8")
    before_render = render.build(target_env, venue)
    updated, changes = promoted_overlay(_load(source_path), _load(target_path))
    changes["runbookVersion"] = version
    new_text = _dump(updated)

    lines = [f"promote {venue}: {source_env} -> {target_env}"]
    overlay_diff = list(difflib.unified_diff(original.splitlines(), new_text.splitlines(), f"a/{paths.relative(target_path)}", f"b/{paths.relative(target_path)}", lineterm=""))
    lines += overlay_diff or [f"(no change to {paths.relative(target_path)}: {target_env} already runs {source_env}'s image)"]

    target_path.write_text(new_text, encoding="utf-8")
    try:
        after_render = render.build(target_env, venue)
        source_render = render.build(source_env, venue)
        lines.append(f"\nrendered difference between {source_env} and {target_env} (after promotion):")
        lines += difflib.unified_diff(source_render.splitlines(), after_render.splitlines(), f"{source_env}/{venue}", f"{target_env}/{venue}", lineterm="", n=1)
        result = gate.check()
    except Exception:
        target_path.write_text(original, encoding="utf-8")
        raise
    blocking = [f for f in result.findings if (f.venue, f.environment) == (venue, target_env)]
    if blocking or dry_run:
        target_path.write_text(original, encoding="utf-8")
    if blocking:
        lines.append(f"\nREFUSED: {len(blocking)} gate finding(s) on {target_env}/{venue}; {paths.relative(target_path)} left unchanged")
        lines += [f"  [{f.engine}:{f.rule}] {f.obj} {f.field}: {f.message}" for f in blocking]
        return False, "\n".join(lines)
    if dry_run:
        lines.append("\ndry run: the gate passes; nothing written")
        return True, "\n".join(lines)

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    evidence = {
        "venue": venue,
        "from": source_env,
        "to": target_env,
        "at": stamp,
        "promoted": changes,
        "renderedSha256": {
            "before": hashlib.sha256(before_render.encode()).hexdigest(),
            "after": hashlib.sha256(after_render.encode()).hexdigest(),
        },
        "checks": {
            "kyverno": sorted(p.parent.name for p in gate.KYVERNO_POLICIES.glob("*/*.yaml") if p.stem == p.parent.name),
            "rego": sorted(p.parent.name for p in gate.REGO_POLICIES.glob("*/*.rego") if not p.name.endswith("_test.rego") and p.parent.name != "lib"),
            "overlaysChecked": [f"{e}/{v}" for e, v in result.overlays],
            "findingsOnTarget": 0,
            "findingsElsewhere": len(result.findings),
        },
        "tools": _tool_versions(),
        "result": "passed",
    }
    evidence_path = EVIDENCE / venue / f"{stamp}-{source_env}-to-{target_env}.json"
    evidence_path.parent.mkdir(parents=True, exist_ok=True)
    evidence_path.write_text(json.dumps(evidence, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    lines.append(f"\npromoted; commit {paths.relative(target_path)} and {paths.relative(evidence_path)} together")
    return True, "\n".join(lines)
