"""Shared fixtures: overlays and component fixtures are rendered once per session with the real kustomize."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# `make setup` installs the vcpl package (editable) into .venv; no PYTHONPATH is needed.
from vcpl import paths, render, runbook, yamlio  # noqa: E402
from vcpl.errors import VcplError  # noqa: E402

COMPONENT_FIXTURES = ROOT / "tests" / "fixtures" / "components"

Docs = list[dict[str, Any]]


def _render(directory: Path) -> Docs:
    try:
        return yamlio.load_all(render.build_dir(directory))
    except VcplError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def rendered_overlays() -> dict[tuple[str, str], Docs]:
    """(env, venue) -> rendered objects of overlays/<env>/<venue>."""
    return {(env, venue): _render(paths.overlay_dir(env, venue)) for env, venue in render.overlays()}


@pytest.fixture(scope="session")
def rendered_fixtures() -> dict[str, Docs]:
    """component fixture name -> rendered objects."""
    return {d.name: _render(d) for d in sorted(COMPONENT_FIXTURES.iterdir()) if (d / "kustomization.yaml").exists()}


@pytest.fixture(scope="session")
def runbooks() -> dict[str, runbook.Runbook]:
    return {venue: runbook.load_venue(venue) for venue in paths.venue_ids()}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--venue", help="run only the tests parametrized by this venue (make test-venue)")


def _names_venue(item: pytest.Item, venue: str) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = [v for value in params.values() for v in (value if isinstance(value, (tuple, list)) else [value])]
    return venue in values


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    venue = config.getoption("--venue")
    if not venue:
        return
    kept = [item for item in items if _names_venue(item, venue)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def find(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} in the rendered output")


def overlay_ids() -> list[tuple[str, str]]:
    return render.overlays()
