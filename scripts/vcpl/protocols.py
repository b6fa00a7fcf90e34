"""The protocol registry (venues/protocols.yaml): session layers and encodings a run book may name.

A session layer's facts decide what the library renders for a service: `engine: quickfix` gets
QuickFIX settings, `transport: multicast` gets channels, and its heartbeat mechanism and unit
are the defaults of a service's heartbeat block.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from pykwalify.core import Core

from vcpl import paths, yamlio
from vcpl.errors import InputError, RunbookError

REGISTRY = paths.VENUES / "protocols.yaml"
SCHEMA = paths.VENUES / "protocols.schema.yaml"
LIMITS = yamlio.Limits(max_bytes=128 * 1024, max_depth=8, max_nodes=5_000)


@lru_cache(maxsize=4)
def registry(path: Path = REGISTRY) -> dict[str, Any]:
    shown = paths.relative(path)
    try:
        data = yamlio.load_strict(yamlio.read_text(path, LIMITS), LIMITS)
    except OSError as exc:
        raise RunbookError(shown, [f"(file): cannot be read ({exc.strerror}); expected the protocol registry"]) from None
    except InputError as exc:
        raise RunbookError(shown, exc.problems) from None
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    core = Core(source_data=data, schema_files=[str(SCHEMA)])
    core.validate(raise_exception=False)
    problems = [str(err) for err in core.errors]
    for kind in ("sessionLayers", "encodings"):
        names: dict[str, str] = {}
        for key, entry in (data or {}).get(kind, {}).items():
            other = names.setdefault(entry.get("orchestra", ""), key)
            if other != key:
                problems.append(f"{kind}.{key}.orchestra: '{entry['orchestra']}' is also {kind}.{other}'s; expected a name of its own, so import can map it back")
    if problems:
        raise RunbookError(shown, problems)
    return data


def session_layers() -> dict[str, dict[str, Any]]:
    return registry()["sessionLayers"]


def encodings() -> dict[str, dict[str, Any]]:
    return registry()["encodings"]


def layer(name: str) -> dict[str, Any]:
    return session_layers()[name]


def _fact(service: dict[str, Any], key: str) -> Any:
    # A draft (a scaffold still to fill) may name no registered layer yet: it then has no facts.
    return session_layers().get(str(service["protocol"]["sessionLayer"]), {}).get(key)


def is_quickfix(service: dict[str, Any]) -> bool:
    """Whether the FIX engine drives this service (it then gets QuickFIX settings)."""
    return _fact(service, "engine") == "quickfix"


def is_multicast(service: dict[str, Any]) -> bool:
    return _fact(service, "transport") == "multicast"
