"""Checked-in derived files are exactly what the sources produce."""
from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import ROOT
from vcpl import generate, paths, reference


def test_generated_profiles_match_the_run_books() -> None:
    problems = generate.stale(generate.planned())
    assert not problems, "run `make generate`:\n" + "\n".join(problems)


def test_stale_detection_reports_a_changed_file() -> None:
    files = generate.planned()
    path = next(iter(files))
    files[path] = files[path] + "# drift\n"
    assert any("out of date" in p and path.name in p for p in generate.stale(files))


def test_crd_schemas_match_their_sources() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "crd_schemas.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runbook_reference_is_in_sync_with_the_schema() -> None:
    assert reference.REFERENCE.read_text(encoding="utf-8") == reference.render_reference(), "run `make generate`"


def test_runbook_reference_lists_every_top_level_field() -> None:
    text = reference.render_reference()
    for field in yaml.safe_load(paths.SCHEMA.read_text())["mapping"]:
        assert f"| `{field}` |" in text, field
