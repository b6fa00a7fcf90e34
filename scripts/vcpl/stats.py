"""Authored versus rendered lines: what onboarding a venue costs and what it buys."""
from __future__ import annotations

from pathlib import Path

from vcpl import paths, render


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.lstrip().startswith("#"))


def report() -> str:
    rows = ["| venue | run book | composition | overlays (3 envs) | authored | rendered (3 envs) | ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    for venue in paths.venue_ids():
        runbook_lines = _lines(paths.runbook_path(venue))
        composition = _lines(paths.VENUES / venue / "kustomization.yaml")
        overlay_lines = sum(_lines(f) for f in sorted(paths.OVERLAYS.glob(f"*/{venue}/*.yaml")))
        authored = runbook_lines + composition + overlay_lines
        rendered = sum(
            sum(1 for line in render.build(env, venue).splitlines() if line.strip())
            for env in paths.ENVIRONMENTS
            if (paths.overlay_dir(env, venue) / "kustomization.yaml").exists()
        )
        rows.append(f"| {venue} | {runbook_lines} | {composition} | {overlay_lines} | {authored} | {rendered} | {rendered / authored:.1f}x |")
    return "\n".join(rows)
