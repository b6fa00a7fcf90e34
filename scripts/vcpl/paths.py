"""Where things live in the repository."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENUES = ROOT / "venues"
# Test-only venues (e.g. the kitchen-sink profile the component fixtures render against).
FIXTURE_VENUES = ROOT / "tests" / "fixtures" / "venues"
OVERLAYS = ROOT / "overlays"
COMPONENTS = ROOT / "components"
PLATFORM = ROOT / "platform" / "platform.yaml"
SCHEMA = VENUES / "runbook.schema.yaml"
TOOLS_BIN = ROOT / ".tools" / "bin"
ENVIRONMENTS = ("dev", "cert", "prod")


def runbook_path(venue: str) -> Path:
    return VENUES / venue / "runbook.yaml"



def overlay_dir(env: str, venue: str) -> Path:
    return OVERLAYS / env / venue


def venue_ids() -> list[str]:
    return sorted(p.parent.name for p in VENUES.glob("*/runbook.yaml"))


def venue_dirs(include_fixtures: bool = True) -> list[Path]:
    """Every folder holding a run book whose generated Components are checked in."""
    dirs = sorted(p.parent for p in VENUES.glob("*/runbook.yaml"))
    if include_fixtures:
        dirs += sorted(p.parent for p in FIXTURE_VENUES.glob("*/runbook.yaml"))
    return dirs


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
