"""Deliberately broken copies of an overlay, for the session rehearsal's negative tests: a
kustomization over the real overlay with one patch, so the rehearsal must name what it breaks."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from vcpl import paths, render


def overlay_copy(directory: Path, venue: str, env: str, patches: list[dict[str, Any]]) -> Path:
    """A kustomization in `directory` over overlays/<env>/<venue> with `patches`: a deliberately
    broken rendering for the rehearsal to catch (the real overlay is never touched)."""
    directory.mkdir(parents=True, exist_ok=True)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     # kustomize refuses an absolute path here: relative to the kustomization.
                     "resources": [os.path.relpath(paths.overlay_dir(env, venue).resolve(), directory.resolve())],
                     "patches": patches}
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return directory


def config_patch(venue: str, env: str, key: str, edit: Callable[[str], str]) -> dict[str, Any]:
    """A patch replacing the rendered ConfigMap value `key` (gateway.json, channels.json,
    session.cfg) by `edit` of the real one: a kustomize patch replaces a data key whole."""
    objects = [o for o in yaml.safe_load_all(render.build(env, venue)) if o]
    cm = next(o for o in objects if o["kind"] == "ConfigMap" and key in o.get("data", {}))
    text = edit(cm["data"][key])
    assert text != cm["data"][key], f"the edit must change {key}"
    patch = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm["metadata"]["name"], "namespace": cm["metadata"]["namespace"]},
             "data": {key: text}}
    return {"patch": yaml.safe_dump(patch)}


def json_edit(mutate: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """An edit of a JSON file: parse, mutate in place, write back."""
    def edit(text: str) -> str:
        doc = json.loads(text)
        mutate(doc)
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"
    return edit


def statefulset_patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    """An RFC 6902 patch of the gateway StatefulSet."""
    return {"target": {"kind": "StatefulSet", "name": "venue-gateway"}, "patch": yaml.safe_dump(ops)}
