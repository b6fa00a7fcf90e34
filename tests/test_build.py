"""Every overlay and every component fixture renders with plain `kustomize build`."""
from __future__ import annotations

import pytest

from conftest import COMPONENT_FIXTURES, ROOT
from vcpl import paths, render


def test_every_venue_has_every_environment() -> None:
    expected = {(env, venue) for env in paths.ENVIRONMENTS for venue in paths.venue_ids()}
    assert set(render.overlays()) == expected


@pytest.mark.parametrize("env,venue", render.overlays(), ids=[f"{e}/{v}" for e, v in render.overlays()])
def test_overlay_renders(rendered_overlays, env: str, venue: str) -> None:
    docs = rendered_overlays[(env, venue)]
    kinds = {d["kind"] for d in docs}
    assert {"StatefulSet", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"} <= kinds
    assert not any(d["kind"] == "ConnectivityProfile" for d in docs), "the local-config profile leaked into the output"
    namespaced = [d for d in docs if d["kind"] != "CiliumEgressGatewayPolicy"]
    assert {d["metadata"].get("namespace") for d in namespaced} == {f"venue-{venue}-{env}"}


def test_base_carries_no_namespace() -> None:
    docs = render.build_dir(ROOT / "base")
    assert "namespace:" not in docs


def test_every_component_has_a_fixture() -> None:
    components = sorted(p.parent for p in paths.COMPONENTS.rglob("kustomization.yaml"))
    fixtures = {p.name for p in COMPONENT_FIXTURES.iterdir()}
    for component in components:
        name = str(component.relative_to(paths.COMPONENTS)).replace("/", "-")
        assert name in fixtures, f"components/{name} has no fixture in tests/fixtures/components/{name}"
