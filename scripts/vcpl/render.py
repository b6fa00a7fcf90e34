"""Render overlays with the real kustomize binary."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from vcpl import paths
from vcpl.errors import VcplError


# The Go tools run briefly on small inputs: collecting garbage costs them more CPU than it saves.
# GC is left to a memory ceiling instead (Go 1.19+), which keeps a large batch bounded.
_GO_RUNTIME = {"kustomize": {"GOGC": "off", "GOMEMLIMIT": "512MiB", "GOMAXPROCS": "1"},
               "kyverno": {"GOGC": "off", "GOMEMLIMIT": "768MiB"},
               "conftest": {"GOGC": "off", "GOMEMLIMIT": "768MiB"}}


def tool_env(name: str) -> dict[str, str]:
    """The environment to run a pinned Go tool with; a caller's own GOGC/GOMEMLIMIT wins."""
    env = dict(os.environ)
    for key, value in _GO_RUNTIME.get(name, {}).items():
        env.setdefault(key, value)
    return env


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
    result = subprocess.run([tool("kustomize"), "build", str(directory)], capture_output=True, text=True, env=tool_env("kustomize"))
    if result.returncode != 0:
        raise VcplError(f"kustomize build {paths.relative(directory)} failed:\n{result.stderr.strip()}")
    return result.stdout


def build(env: str, venue: str) -> str:
    directory = paths.overlay_dir(env, venue)
    if not (directory / "kustomization.yaml").exists():
        known = ", ".join(f"{e}/{v}" for e, v in overlays())
        raise VcplError(f"no overlay {paths.relative(directory)}; expected one of: {known}")
    return build_dir(directory)
