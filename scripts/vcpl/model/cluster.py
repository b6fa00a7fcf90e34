"""Services, disruption budgets, RBAC and network attachments of an overlay, tied to the pods."""
from __future__ import annotations

import json
from typing import Any

from vcpl.model import selectors
from vcpl.model.pods import obj_id

Obj = dict[str, Any]


def nads(objects: list[Obj], namespace: str) -> dict[tuple[str, str], Obj]:
    found = {}
    for obj in objects:
        if obj.get("kind") != "NetworkAttachmentDefinition":
            continue
        meta = obj.get("metadata") or {}
        raw = (obj.get("spec") or {}).get("config")
        try:
            config = json.loads(raw) if isinstance(raw, str) else None
        except json.JSONDecodeError:
            config = None
        plugins: list[Any] = []
        if isinstance(config, dict):
            listed = config.get("plugins")
            plugins = listed if isinstance(listed, list) else ([] if "plugins" in config else [config])
        main = next((p for p in plugins if isinstance(p, dict) and p.get("master")), None) or (plugins[0] if plugins and isinstance(plugins[0], dict) else {})
        found[(str(meta.get("namespace", namespace)), str(meta.get("name")))] = {
            "id": obj_id(obj),
            "name": meta.get("name"),
            "master": main.get("master"),
            "type": main.get("type"),
            "config": config,
            "field": "spec.config",
        }
    return found


def services(objects: list[Obj], pods: list[Obj]) -> list[Obj]:
    found = []
    for obj in objects:
        if obj.get("kind") != "Service":
            continue
        spec = obj.get("spec") or {}
        selector = spec.get("selector")
        selected = [p["id"] for p in pods if selectors.service_matches_any(selector, p["instances"])]
        for p in pods:
            if p["id"] in selected:
                p["services"].append(obj_id(obj))
        found.append({
            "id": obj_id(obj),
            "type": spec.get("type", "ClusterIP"),
            "selector": selector,
            "externalIPs": list(spec.get("externalIPs") or []),
            "loadBalancerIP": spec.get("loadBalancerIP"),
            "loadBalancerSourceRanges": list(spec.get("loadBalancerSourceRanges") or []),
            "ports": [
                {"port": p.get("port"), "nodePort": p.get("nodePort"), "targetPort": p.get("targetPort"), "field": f"spec.ports[{i}]"}
                for i, p in enumerate(spec.get("ports") or [])
            ],
            "selects": selected,
        })
    return found


def pdbs(objects: list[Obj], pods: list[Obj]) -> list[Obj]:
    found = []
    for obj in objects:
        if obj.get("kind") != "PodDisruptionBudget":
            continue
        spec = obj.get("spec") or {}
        # A PDB with an empty selector selects every pod of its namespace (policy/v1).
        selected = [p["id"] for p in pods if selectors.matches_any(spec.get("selector"), p["instances"])]
        for p in pods:
            if p["id"] in selected:
                p["pdbs"].append(obj_id(obj))
        found.append({
            "id": obj_id(obj),
            "selector": spec.get("selector"),
            "minAvailable": spec.get("minAvailable"),
            "maxUnavailable": spec.get("maxUnavailable"),
            "selects": selected,
        })
    return found


def rbac(objects: list[Obj], pods: list[Obj], namespace: str) -> Obj:
    roles = {}
    for obj in objects:
        if obj.get("kind") in ("Role", "ClusterRole"):
            roles[obj_id(obj)] = {
                "id": obj_id(obj),
                "kind": obj["kind"],
                "rules": [
                    {
                        "apiGroups": list(r.get("apiGroups") or []),
                        "resources": list(r.get("resources") or []),
                        "verbs": list(r.get("verbs") or []),
                        "resourceNames": list(r.get("resourceNames") or []),
                        "nonResourceURLs": list(r.get("nonResourceURLs") or []),
                        "field": f"rules[{i}]",
                    }
                    for i, r in enumerate(obj.get("rules") or [])
                ],
                "aggregated": bool(obj.get("aggregationRule")),
            }
    bindings = []
    for obj in objects:
        if obj.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = obj.get("roleRef") or {}
        role_id = f"{ref.get('kind')}/{ref.get('name')}"
        subjects = [
            {"kind": s.get("kind"), "name": s.get("name"),
             "namespace": s.get("namespace") or (namespace if s.get("kind") == "ServiceAccount" else None), "field": f"subjects[{i}]"}
            for i, s in enumerate(obj.get("subjects") or [])
        ]
        binding = {
            "id": obj_id(obj),
            "kind": obj["kind"],
            "roleRef": role_id,
            "role": role_id if role_id in roles else None,
            "subjects": subjects,
            "field": "roleRef",
        }
        bindings.append(binding)
        for p in pods:
            account = p["serviceAccount"]["name"]
            if any(s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == namespace for s in subjects):
                p["rbac"].append(binding["id"])
    return {"bindings": bindings, "roles": sorted(roles.values(), key=lambda r: r["id"])}
