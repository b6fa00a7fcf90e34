"""Every rendered object validates: built-in kinds against Kubernetes' schemas, custom resources
against JSON schemas generated from their projects' CRDs (tests/schemas/crds)."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from conftest import ROOT
from vcpl import render, yamlio

KUBERNETES_VERSION = "1.33.0"
CRD_SCHEMAS = ROOT / "tests" / "schemas" / "crds"


@lru_cache(maxsize=None)
def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    if "/" not in api_version:
        return None
    group, version = api_version.split("/")
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    return json.loads(path.read_text()) if path.exists() else None


def problems(doc: dict[str, Any]) -> list[str]:
    schema = crd_schema(doc["apiVersion"], doc["kind"])
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    if schema is not None:
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        return [f"{where}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {doc['apiVersion']} {doc['kind']}; add its CRD to tests/schemas/crds/source"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


@pytest.mark.parametrize("env,venue", render.overlays(), ids=[f"{e}/{v}" for e, v in render.overlays()])
def test_overlay_objects_match_their_schemas(rendered_overlays, env: str, venue: str) -> None:
    found = [p for doc in rendered_overlays[(env, venue)] for p in problems(doc)]
    assert not found, "\n".join(found)


def test_component_fixture_objects_match_their_schemas(rendered_fixtures) -> None:
    found = [f"{name}: {p}" for name, docs in rendered_fixtures.items() for doc in docs for p in problems(doc)]
    assert not found, "\n".join(found)


# The GitOps objects (Argo CD, Flux) against their CRDs, as `kustomize build` renders each folder.
GITOPS_DIRS = sorted(p.parent for p in (ROOT / "gitops").rglob("kustomization.yaml"))


@pytest.mark.parametrize("directory", GITOPS_DIRS, ids=[str(d.relative_to(ROOT)) for d in GITOPS_DIRS])
def test_gitops_objects_match_their_schemas(directory) -> None:
    docs = yamlio.load_all(render.build_dir(directory))
    found = [p for doc in docs for p in problems(doc)]
    assert docs and not found, "\n".join(found) or f"{directory.relative_to(ROOT)} renders nothing"


def test_schema_validation_rejects_a_misspelled_field(rendered_overlays) -> None:
    docs = rendered_overlays[("prod", "cme")]
    for kind in ("NetworkAttachmentDefinition", "StatefulSet"):
        doc = json.loads(json.dumps(next(d for d in docs if d["kind"] == kind)))
        doc["spec"]["replicaz" if kind == "StatefulSet" else "confg"] = 1
        assert problems(doc), f"a misspelled field in {kind} was not rejected"


def test_unknown_kind_is_reported_not_skipped() -> None:
    doc = {"apiVersion": "example.invalid/v1", "kind": "Mystery", "metadata": {"name": "x"}}
    assert any("no schema" in p for p in problems(doc))
