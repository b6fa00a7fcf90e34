"""The effective model of a rendered overlay (see README.md): what each pod will really reach,
mount, run as and log on to."""
from __future__ import annotations

from typing import Any

from vcpl.model import cluster, pods as pod_model, sessions
from vcpl.model.credentials import scan

Obj = dict[str, Any]


def _alerts(objects: list[Obj]) -> list[Obj]:
    found = []
    for obj in objects:
        if obj.get("kind") != "PrometheusRule":
            continue
        for g, group in enumerate((obj.get("spec") or {}).get("groups") or []):
            for r, rule in enumerate((group or {}).get("rules") or []):
                if isinstance(rule, dict) and rule.get("alert"):
                    found.append({"name": rule["alert"], "object": pod_model.obj_id(obj), "field": f"spec.groups[{g}].rules[{r}]"})
    return found


def build(*, venue: str, environment: str, namespace: str, objects: list[Obj], runbook: Obj,
          platform: Obj, components: list[str], expected: Obj) -> Obj:
    attachments = cluster.nads(objects, namespace)
    pods = pod_model.build_pods(objects, namespace, attachments)
    services = cluster.services(objects, pods)
    pdbs = cluster.pdbs(objects, pods)
    rbac = cluster.rbac(objects, pods, namespace)
    credentials = [suspect for obj in objects for suspect in scan(obj)]
    return {
        "kind": "OverlayModel",
        "overlay": {"venue": venue, "environment": environment, "namespace": namespace},
        "runbook": runbook,
        "platform": platform,
        "expected": expected,
        "components": components,
        "objects": objects,
        "pods": pods,
        "services": services,
        "pdbs": pdbs,
        "rbac": rbac,
        "networks": sorted(attachments.values(), key=lambda n: n["id"]),
        "sessions": sessions.build(pods, objects),
        "credentials": credentials,
        "alerts": _alerts(objects),
    }


def index_entries(m: Obj) -> list[Obj]:
    """One overlay's contribution to the library index: every session identity, where it is set."""
    entries = []
    venue, env = m["overlay"]["venue"], m["overlay"]["environment"]
    seen = set()
    for qf in m["sessions"]["quickfix"]:
        for s in qf["sessions"]:
            sender = s["settings"].get("SenderCompID")
            if sender:
                seen.add(s.get("service"))
                entries.append({"venue": venue, "environment": env, "service": s.get("service"), "senderCompID": sender,
                                "targetCompID": s["settings"].get("TargetCompID"), "object": qf["object"],
                                "field": sessions.quickfix_field(qf["field"], s, "SenderCompID")})
    gw = m["sessions"]["gateway"]
    listed = gw["config"].get("services") if gw else None
    for i, svc in enumerate(listed if isinstance(listed, list) else []):
        if not isinstance(svc, dict) or svc.get("name") in seen:
            continue
        session = svc.get("session")
        if isinstance(session, dict) and session.get("senderCompID"):
            entries.append({"venue": venue, "environment": env, "service": svc.get("name"), "senderCompID": session["senderCompID"],
                            "targetCompID": session.get("targetCompID"), "object": gw["object"],
                            "field": f"{gw['field']}.services[{i}].session.senderCompID"})
    return entries


def library_index(entries: list[list[Obj]]) -> Obj:
    """The cross-overlay facts of a whole catalogue, from each overlay's `index_entries`."""
    return {"kind": "LibraryIndex", "sessions": [e for overlay in entries for e in overlay]}
