"""Every overlay and every component fixture renders with plain `kustomize build`."""
from __future__ import annotations

import shutil

import pytest

from conftest import COMPONENT_FIXTURES, ROOT
from vcpl import generate, paths, profile, render, runbook, yamlio
from vcpl.errors import VcplError


def test_every_venue_has_every_environment() -> None:
    expected = {(env, venue) for env in paths.ENVIRONMENTS for venue in paths.venue_ids()}
    assert set(render.overlays()) == expected


@pytest.mark.parametrize("env,venue", render.overlays(), ids=[f"{e}/{v}" for e, v in render.overlays()])
def test_overlay_renders(rendered_overlays, env: str, venue: str) -> None:
    docs = rendered_overlays[(env, venue)]
    kinds = {d["kind"] for d in docs}
    assert {"StatefulSet", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"} <= kinds
    assert not any(d["kind"] == "ConnectivityProfile" for d in docs), "the local-config profile leaked into the output"
    namespaced = [d for d in docs if d["kind"] not in ("CiliumEgressGatewayPolicy", "Namespace")]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"] == [f"venue-{venue}-{env}"]
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


def test_component_without_its_run_book_fact_is_explained_in_run_book_terms(tmp_path) -> None:
    """An overlay composes the egress gateway, but its run book gives no allow-listed source IP:
    kustomize's replacement error is translated into the run-book field and the component."""
    for folder in ("base", "components"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copytree(paths.VENUES / "nyse", tmp_path / "venues" / "nyse")
    shutil.copytree(paths.overlay_dir("prod", "nyse"), tmp_path / "overlays" / "prod" / "nyse")
    rb = runbook.load_venue("nyse")
    del rb["environments"]["prod"]["networks"][0]["allowlistedSourceIP"]
    generated = tmp_path / "venues" / "nyse" / "generated" / "prod" / generate.PROFILE_FILE
    generated.write_text(yamlio.dump(profile.build(rb, generate.load_platform(), "prod")), encoding="utf-8")
    with pytest.raises(VcplError) as info:
        render.build_dir(tmp_path / "overlays" / "prod" / "nyse")
    message = str(info.value)
    assert "overlays/prod/nyse: components/ip-allowlist/cilium-egress-gateway needs spec.egressGateway" in message
    assert "venues/nyse/runbook.yaml gives no environments.prod.networks[].allowlistedSourceIP" in message
