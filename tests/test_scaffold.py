"""Onboarding: a scaffolded venue fails with the fields to fill, and once they are filled (by the
filler below, standing in for a person) it builds and passes the whole gate with no other edit.
Runs in a scratch copy of the repository."""
from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


from conftest import ROOT
from vcpl import archetypes, scaffold

# The onboarding budget: lines a person fills in for a typical venue of any archetype.
MAX_LINES_TO_FILL = 60

IGNORED = shutil.ignore_patterns(".git", ".venv", ".tools", "build", "__pycache__", ".pytest_cache", "evidence")
PLACEHOLDER = re.compile(r"""(?P<q>['"]?)FILL-IN (?P<kind>\w+): (?P<what>[^'"\n]*)(?P=q)""")


def _vcpl(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo / "scripts"), "PATH": f"{ROOT / '.tools' / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "vcpl", *args], cwd=repo, env=env, capture_output=True, text=True)


class Filler:
    """What an engineer would type from the venue's documents, one kind of field at a time."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.n = itertools.count(1)

    def __call__(self, match: re.Match[str]) -> str:
        kind = match.group("kind")
        value = self.value(kind, match.group("what"))
        # Numbers stay bare; everything else is quoted, as a person would ("18:00" is not 1080).
        return value if kind in ("port", "number") else f'"{value}"'

    def value(self, kind: str, what: str) -> str:
        i = next(self.n)
        if kind == "host":
            return f"gw{i}.{self.venue}-markets.net" if "DNS" in what else f"10.88.{i // 250}.{i % 250 + 1}"
        if kind == "name":
            return f"{self.venue}-sim{i}.venue-simulators.svc.cluster.local"
        if kind == "enum":
            return what.split(" | ")[0]
        if kind == "number":
            return "10" if what.startswith("heartbeat interval") else "1"
        if kind == "day":
            return "sunday" if "open" in what else "friday"
        if kind == "clock":
            return "18:00" if i % 2 else "17:00"
        values = {
            "port": str(20000 + i), "path": "/v1", "cidr": f"10.{90 + i % 100}.0.0/24", "ip": f"10.251.{i % 250}.{i % 200 + 1}",
            "group": f"{239 if 'simulator' in what else 233}.88.{i % 250}.{i % 200 + 1}", "compid": f"{self.venue.upper()}-{i}-{what.split()[-1].upper()}",
            "key": "password", "text": "Filled in from the venue's documents", "zone": "America/New_York", "mic": "XNEW",
            "team": "newvenue-connectivity", "date": "2026-11-21", "tag": "1.0.0", "digest": "sha256:" + "e" * 64,
        }
        return values[kind]


def test_scaffolded_venues_onboard_with_only_their_fields(tmp_path: Path) -> None:
    """One venue per archetype in one scratch copy, so generate and the gate run once for all."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=IGNORED)
    venues = {archetype: f"new{i}" for i, archetype in enumerate(sorted(scaffold.ARCHETYPES))}
    filled_lines: dict[str, int] = {}
    for archetype, venue in venues.items():
        created = _vcpl(repo, "scaffold", venue, "--archetype", archetype)
        assert created.returncode == 0, created.stderr
        validate = _vcpl(repo, "validate", f"venues/{venue}/runbook.yaml")
        assert validate.returncode == 1 and "fill in" in validate.stderr, validate.stderr
        assert "services[0]" in validate.stderr and "environments.prod" in validate.stderr, validate.stderr
        blocked = _vcpl(repo, "generate")
        assert blocked.returncode == 2 and f"venues/{venue}/runbook.yaml" in blocked.stderr

        filler = Filler(venue)
        own = [repo / "venues" / venue / "runbook.yaml"] + [repo / "overlays" / env / venue / "kustomization.yaml" for env in ("dev", "cert", "prod")]
        filled_lines[archetype] = 0
        for path in own:
            text = path.read_text()
            filled_lines[archetype] += sum(1 for line in text.splitlines() if "FILL-IN " in line and not line.lstrip().startswith("#"))
            path.write_text(PLACEHOLDER.sub(filler, text))
        assert filled_lines[archetype] > 0

    generated = _vcpl(repo, "generate")
    assert generated.returncode == 0, generated.stderr[-3000:]
    gate = _vcpl(repo, "check")
    assert gate.returncode == 0, gate.stdout[-4000:] + gate.stderr[-2000:]
    assert "gate passed" in gate.stdout
    print("lines to fill per archetype:", filled_lines)
    for archetype, count in filled_lines.items():
        run_book, overlays, _ = archetypes.lines_to_fill(archetype)
        assert count == run_book + overlays, f"docs/archetypes.md counts {run_book + overlays} for {archetype}, the filler filled {count}"
        assert count <= MAX_LINES_TO_FILL, f"{archetype}: {count} lines to fill, above the onboarding budget of {MAX_LINES_TO_FILL}"


def test_archetype_guide_is_in_sync() -> None:
    assert archetypes.DOC.read_text(encoding="utf-8") == archetypes.render_doc(), "run `make generate`"


def test_readme_onboarding_table_follows_the_scaffold() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for archetype in scaffold.ARCHETYPES:
        run_book, overlays, written = archetypes.lines_to_fill(archetype)
        row = f"| {archetype} | {run_book + overlays} ({run_book} + {overlays}) | {written} |"
        assert row in readme, f"README.md: expected the row {row!r} (make generate, then copy docs/archetypes.md's counts)"
