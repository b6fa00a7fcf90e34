"""Each component is a documented `kind: Component`, and its fixture shows what it adds."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vcpl import paths

COMPONENTS = sorted(p.parent for p in paths.COMPONENTS.rglob("kustomization.yaml"))
README_SECTIONS = ("## Purpose", "## Parameters", "## Adds", "## Cluster requirements", "## Usage")


def _name(component: Path) -> str:
    return str(component.relative_to(paths.COMPONENTS)).replace("/", "-")


@pytest.mark.parametrize("component", COMPONENTS, ids=_name)
def test_is_a_component_with_a_complete_readme(component: Path) -> None:
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    readme = component / "README.md"
    assert readme.exists(), f"{readme} missing"
    text = readme.read_text()
    missing = [s for s in README_SECTIONS if s not in text]
    assert not missing, f"{readme}: missing sections {missing}"


@pytest.mark.parametrize("component", COMPONENTS, ids=_name)
def test_fixture_renders_what_the_component_adds(component: Path, rendered_fixtures) -> None:
    docs = rendered_fixtures[_name(component)]
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    for resource in kustomization.get("resources", []):
        obj = yaml.safe_load((component / resource).read_text())
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "CiliumEgressGatewayPolicy":
            assert any(k == kind for k, _ in present), f"{kind} missing from the fixture output"
        else:
            assert (kind, name) in present, f"{kind}/{name} from {resource} missing from the fixture output"
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet")
    volumes = {v["name"] for v in statefulset["spec"]["template"]["spec"].get("volumes", [])}
    for patch in kustomization.get("patches", []):
        patched = yaml.safe_load((component / patch["path"]).read_text())
        if patched["kind"] == "StatefulSet":
            for volume in patched["spec"]["template"]["spec"].get("volumes", []):
                assert volume["name"] in volumes, f"volume {volume['name']} from {patch['path']} not in the fixture output"
            continue
        # Any other patch: its values are in the output, and a field it sets to null is gone.
        rendered = next(d for d in docs if (d["kind"], d["metadata"]["name"]) == (patched["kind"], patched["metadata"]["name"]))
        for key, value in patched["spec"].items():
            assert rendered["spec"].get(key) == value, f"{patch['path']}: spec.{key} is {rendered['spec'].get(key)!r} in the fixture output"
    # No placeholder the component ships may survive its replacements.
    text = yaml.safe_dump_all(docs)
    assert "unset" not in text.replace("vcpl.dev/config-hash: unset", ""), "a replacement left an 'unset' placeholder"
    assert "0.0.0.0" not in text
