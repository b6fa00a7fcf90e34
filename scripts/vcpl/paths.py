"""Where things live in the repository."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENUES = ROOT / "venues"
OVERLAYS = ROOT / "overlays"
COMPONENTS = ROOT / "components"
PLATFORM = ROOT / "platform" / "platform.yaml"
SCHEMA = VENUES / "runbook.schema.yaml"
TOOLS_BIN = ROOT / ".tools" / "bin"
ENVIRONMENTS = ("dev", "cert", "prod")


def runbook_path(venue: str) -> Path:
    return VENUES / venue / "runbook.yaml"


def generated_dir(venue: str, env: str) -> Path:
    return VENUES / venue / "generated" / env


def overlay_dir(env: str, venue: str) -> Path:
    return OVERLAYS / env / venue


def venue_ids() -> list[str]:
    return sorted(p.parent.name for p in VENUES.glob("*/runbook.yaml"))


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
