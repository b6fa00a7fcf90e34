"""Render overlays with the real kustomize binary."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vcpl import paths
from vcpl.errors import VcplError


def tool(name: str) -> str:
    """A pinned tool from .tools/bin, falling back to PATH only for developers' convenience."""
    pinned = paths.TOOLS_BIN / name
    if pinned.exists():
        return str(pinned)
    found = shutil.which(name)
    if found:
        return found
    raise VcplError(f"{name} is not installed; run `make setup`")


def overlays() -> list[tuple[str, str]]:
    """(env, venue) of every overlay folder, in a stable order."""
    found = []
    for kustomization in sorted(paths.OVERLAYS.glob("*/*/kustomization.yaml")):
        found.append((kustomization.parent.parent.name, kustomization.parent.name))
    return found


def build_dir(directory: Path) -> str:
    result = subprocess.run([tool("kustomize"), "build", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise VcplError(f"kustomize build {paths.relative(directory)} failed:\n{result.stderr.strip()}")
    return result.stdout


def build(env: str, venue: str) -> str:
    directory = paths.overlay_dir(env, venue)
    if not (directory / "kustomization.yaml").exists():
        known = ", ".join(f"{e}/{v}" for e, v in overlays())
        raise VcplError(f"no overlay {paths.relative(directory)}; expected one of: {known}")
    return build_dir(directory)
