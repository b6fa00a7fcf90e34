"""Facts about the shipped overlays that decide where an operator applies.

Read straight from the repository's files (overlay and venue kustomizations, run books, the
generated profiles), not from the gate or its model: operators must not know how the gate sees
things.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE = "connectivityprofile.venue.yaml"
ENVIRONMENTS = ("dev", "cert", "prod")


def _read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _composed(overlay_dir: Path, components_root: Path) -> frozenset[str]:
    """Component folders an overlay reaches through `components:` and `resources:`."""
    found: set[str] = set()
    seen: set[Path] = set()
    components_root = components_root.resolve()

    def walk(directory: Path) -> None:
        directory = directory.resolve()
        if directory in seen or not (directory / "kustomization.yaml").is_file():
            return
        seen.add(directory)
        if directory.is_relative_to(components_root):
            found.add(str(directory.relative_to(components_root)))
        data = _read_yaml(directory / "kustomization.yaml") or {}
        for entry in (data.get("resources") or []) + (data.get("components") or []):
            if (directory / entry).is_dir():
                walk(directory / entry)

    walk(overlay_dir)
    return frozenset(found)


@dataclass(frozen=True)
class Overlay:
    env: str
    venue: str
    components: frozenset[str]
    runbook: dict[str, Any] = field(repr=False, compare=False)
    profile: dict[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.env, self.venue)

    @property
    def label(self) -> str:
        return f"{self.env}/{self.venue}"

    @property
    def dir(self) -> str:
        return f"overlays/{self.env}/{self.venue}"

    @property
    def profile_path(self) -> str:
        return f"venues/{self.venue}/generated/{self.env}/{PROFILE}"

    @property
    def namespace(self) -> str:
        return self.profile.get("namespace") or f"venue-{self.venue}-{self.env}"

    @property
    def gateway_config(self) -> dict[str, Any]:
        return json.loads(self.profile["gateway"]["config"])

    @property
    def quickfix(self) -> str | None:
        return (self.profile.get("fix") or {}).get("sessionSettings")

    @property
    def stunnel(self) -> str | None:
        return (self.profile.get("tls") or {}).get("stunnelConfig")

    def has(self, component: str) -> bool:
        return component in self.components

    @property
    def gateway_pods(self) -> int:
        """The most gateway pods that run at once: the declared replicas or what the opening job scales to."""
        counts = [1]
        counts.append(int((self.profile.get("failover") or {}).get("replicas") or 1))
        counts.append(int((self.profile.get("sessionSchedule") or {}).get("replicas") or 1))
        return max(counts)

    def services(self) -> list[dict[str, Any]]:
        return self.runbook["services"]

    def service_env(self, service: dict[str, Any]) -> dict[str, Any]:
        return service["environments"].get(self.env) or {}

    @property
    def fix_sessions(self) -> list[tuple[int, dict[str, Any]]]:
        """(index, service) of services that log on with a SenderCompID in this environment."""
        return [(i, s) for i, s in enumerate(self.services()) if (self.service_env(s).get("session") or {}).get("senderCompID")]


@dataclass(frozen=True)
class Catalogue:
    root: Path
    overlays: tuple[Overlay, ...]

    @classmethod
    def load(cls, root: Path) -> Catalogue:
        found = []
        books: dict[str, dict[str, Any]] = {}
        for kustomization in sorted((root / "overlays").glob("*/*/kustomization.yaml")):
            env, venue = kustomization.parent.parent.name, kustomization.parent.name
            if venue not in books:
                books[venue] = _read_yaml(root / "venues" / venue / "runbook.yaml")
            profile = _read_yaml(root / "venues" / venue / "generated" / env / PROFILE)["spec"]
            found.append(Overlay(env, venue, _composed(kustomization.parent, root / "components"), books[venue], profile))
        found.sort(key=lambda o: (ENVIRONMENTS.index(o.env) if o.env in ENVIRONMENTS else 9, o.venue))
        return cls(root, tuple(found))

    def get(self, env: str, venue: str) -> Overlay:
        for overlay in self.overlays:
            if overlay.key == (env, venue):
                return overlay
        raise KeyError(f"{env}/{venue}")

    def of_venue(self, venue: str) -> list[Overlay]:
        return [o for o in self.overlays if o.venue == venue]

    def of_env(self, env: str) -> list[Overlay]:
        return [o for o in self.overlays if o.env == env]

    def composing(self, component: str) -> list[Overlay]:
        return [o for o in self.overlays if o.has(component)]

    @property
    def venues(self) -> list[str]:
        return sorted({o.venue for o in self.overlays})
