"""Run books validate, and each kind of mistake is reported with file, field and expectation."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT
from vcpl import paths, protocols, runbook

BROKEN = yaml.safe_load((ROOT / "tests" / "fixtures" / "runbooks" / "broken.yaml").read_text())


@pytest.mark.parametrize("venue", paths.venue_ids())
def test_shipped_runbook_is_valid(venue: str) -> None:
    runbook.load_venue(venue)


def test_every_venue_has_all_environments_and_a_composition() -> None:
    for venue in paths.venue_ids():
        assert (paths.VENUES / venue / "kustomization.yaml").exists(), f"venues/{venue}/kustomization.yaml missing"
        for env in paths.ENVIRONMENTS:
            assert (paths.overlay_dir(env, venue) / "kustomization.yaml").exists(), f"overlays/{env}/{venue} missing"


def _apply(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set (or with value '__delete__' remove) a field addressed like services.0.heartbeat.default."""
    keys = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node = data
    for key in keys[:-1]:
        node = node[key]
    if value == "__delete__":
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


@pytest.mark.parametrize("case", BROKEN, ids=[c["name"] for c in BROKEN])
def test_broken_runbook_names_file_and_field(case: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(yaml.safe_load(paths.runbook_path(case["venue"]).read_text()))
    for dotted, value in case["set"].items():
        _apply(data, dotted, value)
    # The venue layout (venues/<id>/runbook.yaml), where the folder names the venue.
    folder = tmp_path / "venues" / case["venue"]
    folder.mkdir(parents=True)
    target = folder / "runbook.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    # Through the CLI, as a user would meet the error.
    result = subprocess.run(
        [sys.executable, "-m", "vcpl", "validate", str(target)],
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "scripts"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert str(target) in result.stderr, result.stderr
    assert case["expect"] in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_literal_broken_fixture_file_is_rejected() -> None:
    path = ROOT / "tests" / "fixtures" / "runbooks" / "kitchen-sink" / "runbook.yaml"
    with pytest.raises(runbook.RunbookError) as info:
        runbook.load(path)
    message = str(info.value)
    assert "tests/fixtures/runbooks/kitchen-sink/runbook.yaml" in message
    assert "services[0](fix-oe).heartbeat.default: 90 is outside [5, 60] s" in message


def test_sources_are_inherited_from_the_nearest_enclosing_block() -> None:
    rb = runbook.load_venue("nyse")
    raw = yaml.safe_load(paths.runbook_path("nyse").read_text())
    fix, xdp = rb["services"]
    # No source of its own: the run book's top-level default.
    assert "source" not in raw["services"][0]["environments"]["prod"]["endpoints"]["primary"]
    assert fix["environments"]["prod"]["endpoints"]["primary"]["source"] == raw["source"] == "ONBOARDING"
    # Its own wins over every default.
    assert fix["environments"]["dev"]["endpoints"]["primary"]["source"] == "SIMULATOR"
    # A derived source (the bounds) defaults to its block's source, not to the top level.
    assert fix["heartbeat"]["boundsSource"] == fix["heartbeat"]["source"] == "NYSE-FIX"
    # A block's source passes down to what it holds (the XDP limits cite NYSE-CC themselves).
    assert xdp["environments"]["prod"]["recovery"][0]["limits"]["source"] == "NYSE-CC"


@pytest.mark.parametrize("venue", paths.venue_ids())
def test_heartbeat_mechanism_and_unit_come_from_the_session_layer_unless_stated(venue: str) -> None:
    rb = runbook.load_venue(venue)
    raw = yaml.safe_load(paths.runbook_path(venue).read_text())
    for service, written in zip(rb["services"], raw["services"]):
        if "heartbeat" not in written:
            continue
        layer = protocols.layer(service["protocol"]["sessionLayer"])["heartbeat"]
        for key in ("mechanism", "unit"):
            assert service["heartbeat"][key] == written["heartbeat"].get(key, layer[key]), f"{service['name']}.heartbeat.{key}"
        for env in paths.ENVIRONMENTS:
            expected = written["environments"][env].get("heartbeat", written["heartbeat"]["default"])
            assert service["environments"][env]["heartbeat"] == expected
