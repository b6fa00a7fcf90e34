"""Render overlays with the real kustomize binary."""
from __future__ import annotations

import os
import re
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


# What in a run book makes `vcpl generate` write each section of the ConnectivityProfile that
# components copy from with replacements ({env}: the overlay's environment).
PROFILE_SECTIONS = {
    "egressGateway": "environments.{env}.networks[].allowlistedSourceIP on a path other than ipsec-vpn (the source IP the venue allow-lists; on a VPN path it is the tunnel's source, which components/vpn uses)",
    "vpn": "an environments.{env}.networks[] entry with path ipsec-vpn and its vpn block",
    "multicast": "services[].environments.{env}.channels (multicast A/B lines)",
    "fix": "a service whose session layer the FIX engine drives (engine quickfix in venues/protocols.yaml)",
    "tls": "a service with tls.required: true",
    "credentials": "services[].auth.secretKeys",
    "sessionSchedule": "schedule.weekly or schedule.daily (the run book's schedule is continuous)",
    "clockSync": "clockSync.required: true",
}
_MISSING_SOURCE = re.compile(
    r"recursed accumulation of path '(?P<component>[^']+)': fieldPath `(?P<field>[^`]+)` is missing for replacement source ConnectivityProfile"
)


def explain(directory: Path, stderr: str) -> str | None:
    """A kustomize replacement error in run-book terms: which component needs which run-book field."""
    found = _MISSING_SOURCE.findall(stderr)
    if not found:
        return None
    component, field = found[-1]
    parts = field.split(".")
    section = parts[1] if len(parts) > 1 and parts[0] == "spec" else field
    # overlays/<env>/<venue>, in this checkout or a scratch copy of it
    env, venue = directory.parent.name, directory.name
    root = directory.resolve().parents[2]
    component = str(Path(component).relative_to(root)) if Path(component).is_relative_to(root) else component
    wanted = PROFILE_SECTIONS.get(section, f"the facts behind the profile's spec.{section}").format(env=env)
    return (f"overlays/{env}/{venue}: {component} needs {field} of the venue's generated ConnectivityProfile, "
            f"but venues/{venue}/runbook.yaml gives no {wanted} in {env}; expected the run book to state it "
            f"(then `make generate VENUE={venue}`), or the overlay not to compose {component}")


def build_dir(directory: Path) -> str:
    result = subprocess.run([tool("kustomize"), "build", str(directory)], capture_output=True, text=True, env=tool_env("kustomize"))
    if result.returncode != 0:
        explained = explain(directory, result.stderr)
        detail = f"{explained}\n(kustomize: {result.stderr.strip()})" if explained else result.stderr.strip()
        raise VcplError(f"kustomize build {paths.relative(directory)} failed:\n{detail}")
    return result.stdout


def build(env: str, venue: str) -> str:
    directory = paths.overlay_dir(env, venue)
    if not (directory / "kustomization.yaml").exists():
        known = ", ".join(f"{e}/{v}" for e, v in overlays())
        raise VcplError(f"no overlay {paths.relative(directory)}; expected one of: {known}")
    return build_dir(directory)
