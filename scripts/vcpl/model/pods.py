"""Pods as they will run: every pod template of an overlay with its effective security, identity,
storage, scheduling, networks and the policies that select it."""
from __future__ import annotations

import json
import posixpath
import re
import shlex
from typing import Any

from vcpl.model import netpol, selectors

Obj = dict[str, Any]

# Where each workload kind keeps its pod template.
TEMPLATE_FIELDS = {
    "Pod": "",
    "Deployment": "spec.template",
    "StatefulSet": "spec.template",
    "DaemonSet": "spec.template",
    "ReplicaSet": "spec.template",
    "Job": "spec.template",
    "CronJob": "spec.jobTemplate.spec.template",
}
# The workloads the library declares, by what they are, not by their labels.
ROLES = {
    ("StatefulSet", "venue-gateway"): "gateway",
    ("CronJob", "session-open"): "session-scheduler",
    ("CronJob", "session-close"): "session-scheduler",
    ("CronJob", "sequence-reset"): "session-scheduler",
}
MULTUS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
_SCALE = re.compile(r"--replicas[= ](\d+)")


def obj_id(obj: Obj) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name', '<unnamed>')}"


def dig(obj: Any, field: str) -> Any:
    for part in [p for p in field.split(".") if p]:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _effective_security(pod_sc: Obj, sc: Obj) -> Obj:
    caps = sc.get("capabilities") or {}

    def pick(key: str) -> Any:
        return sc[key] if key in sc else pod_sc.get(key)

    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    return {
        "runAsNonRoot": pick("runAsNonRoot"),
        "runAsUser": pick("runAsUser"),
        "privileged": bool(sc.get("privileged", False)),
        "allowPrivilegeEscalation": sc.get("allowPrivilegeEscalation"),
        "readOnlyRootFilesystem": bool(sc.get("readOnlyRootFilesystem", False)),
        "capabilitiesAdd": list(caps.get("add") or []),
        "capabilitiesDrop": list(caps.get("drop") or []),
        "seccomp": seccomp,
    }


def _volume(vol: Obj, claim_templates: set[str], field: str) -> Obj:
    name = vol.get("name")
    if name in claim_templates and len(vol) == 1:
        return {"name": name, "type": "persistentVolumeClaim", "source": name, "field": field}
    for vtype, source_key in (
        ("persistentVolumeClaim", "claimName"), ("configMap", "name"), ("secret", "secretName"),
        ("emptyDir", None), ("hostPath", "path"), ("projected", None), ("downwardAPI", None),
        ("csi", "driver"), ("ephemeral", None), ("nfs", "path"), ("image", "reference"),
    ):
        if vtype in vol:
            body = vol.get(vtype) or {}
            return {"name": name, "type": vtype, "source": body.get(source_key) if source_key else None,
                    "items": list(body.get("items") or []) if isinstance(body, dict) else [], "field": field}
    other = next((k for k in vol if k != "name"), "unknown")
    return {"name": name, "type": other, "source": None, "field": field}


def _containers(spec: Obj, base: str, volumes: dict[str, Obj]) -> list[Obj]:
    pod_sc = spec.get("securityContext") or {}
    found = []
    for key, default_type in (("initContainers", "init"), ("containers", "container"), ("ephemeralContainers", "ephemeral")):
        for i, c in enumerate(spec.get(key) or []):
            field = f"{base}spec.{key}[{i}]"
            ctype = "sidecar" if key == "initContainers" and c.get("restartPolicy") == "Always" else default_type
            mounts = []
            for j, m in enumerate(c.get("volumeMounts") or []):
                vol = volumes.get(m.get("name"), {"type": "missing", "source": None})
                mounts.append({
                    "path": posixpath.normpath(m.get("mountPath") or "/"),
                    "volume": m.get("name"),
                    "type": vol["type"],
                    "source": vol["source"],
                    "items": vol.get("items") or [],
                    "readOnly": bool(m.get("readOnly", False)),
                    "subPath": m.get("subPath"),
                    "field": f"{field}.volumeMounts[{j}]",
                })
            found.append({
                "name": c.get("name"),
                "type": ctype,
                "field": field,
                "image": c.get("image"),
                "command": list(c.get("command") or []),
                "args": list(c.get("args") or []),
                "security": _effective_security(pod_sc, c.get("securityContext") or {}),
                "resources": {
                    "requests": dict((c.get("resources") or {}).get("requests") or {}),
                    "limits": dict((c.get("resources") or {}).get("limits") or {}),
                },
                "hostPorts": [
                    {"port": p["hostPort"], "field": f"{field}.ports[{k}].hostPort"}
                    for k, p in enumerate(c.get("ports") or []) if p.get("hostPort")
                ],
                "env": [dict(e, field=f"{field}.env[{k}]") for k, e in enumerate(c.get("env") or [])],
                "mounts": mounts,
            })
    return found


def resolve_path(container: Obj, path: str) -> Obj | None:
    """The mount that serves `path` inside a container: the deepest mount point wins."""
    path = posixpath.normpath(path)
    best = None
    for m in container["mounts"]:
        mp = m["path"]
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) >= len(best["path"]):
                best = m
    return best


def _token(owner: str, spec: Obj, base: str, account: Obj | None, objects: list[Obj]) -> Obj:
    sources = []
    pod_setting = spec.get("automountServiceAccountToken")
    account_setting = (account or {}).get("automountServiceAccountToken")
    automount = pod_setting if pod_setting is not None else (account_setting if account_setting is not None else True)
    if automount:
        if pod_setting is None and account is not None and account_setting is not None:
            sources.append({"how": "automount", "object": obj_id(account), "field": "automountServiceAccountToken"})
        else:
            unset = "" if pod_setting is not None else " (unset: Kubernetes mounts a token)"
            sources.append({"how": "automount", "object": owner, "field": f"{base}spec.automountServiceAccountToken{unset}"})
    for i, vol in enumerate(spec.get("volumes") or []):
        for k, src in enumerate((vol.get("projected") or {}).get("sources") or []):
            if "serviceAccountToken" in src:
                sources.append({"how": "projected", "object": owner, "field": f"{base}spec.volumes[{i}].projected.sources[{k}]"})
        secret_name = (vol.get("secret") or {}).get("secretName")
        if secret_name and any(
            o.get("kind") == "Secret" and o["metadata"].get("name") == secret_name
            and o.get("type") == "kubernetes.io/service-account-token" for o in objects
        ):
            sources.append({"how": "secret", "object": owner, "field": f"{base}spec.volumes[{i}].secret"})
    return {"token": bool(sources), "tokenSources": sources}


def _networks(annotations: Obj, namespace: str, base: str, nads: dict[tuple[str, str], Obj]) -> list[Obj]:
    raw = annotations.get(MULTUS_ANNOTATION)
    if not raw:
        return []
    field = f"{base}metadata.annotations[{MULTUS_ANNOTATION}]"
    entries: list[Obj] = []
    try:
        parsed = json.loads(raw)
        entries = [e for e in parsed if isinstance(e, dict)] if isinstance(parsed, list) else []
    except (json.JSONDecodeError, TypeError):
        # Multus also takes "ns/name@iface, name2".
        for item in str(raw).split(","):
            item = item.strip()
            if not item:
                continue
            name, _, iface = item.partition("@")
            ns, _, nm = name.rpartition("/")
            entries.append({"name": nm, "namespace": ns or None, "interface": iface or None})
    found = []
    for e in entries:
        ns = e.get("namespace") or namespace
        nad = nads.get((str(ns), str(e.get("name"))))
        found.append({
            "name": e.get("name"),
            "namespace": ns,
            "interface": e.get("interface"),
            "field": field,
            "nad": nad["id"] if nad else None,
            "master": nad["master"] if nad else None,
            "type": nad["type"] if nad else None,
        })
    return found


def instances(kind: str, name: str, labels: dict[str, str], max_replicas: int) -> list[dict[str, str]]:
    """The labels each running pod carries: the template's, plus those its controller adds where
    their values are known in advance (a StatefulSet's pod name and index)."""
    if kind != "StatefulSet":
        return [labels]
    return [{**labels, "statefulset.kubernetes.io/pod-name": f"{name}-{i}", "apps.kubernetes.io/pod-index": str(i)}
            for i in range(max(max_replicas, 1))]


def _scheduling(spec: Obj, labels: dict[str, str]) -> Obj:
    affinity = spec.get("affinity") or {}
    anti = affinity.get("podAntiAffinity") or {}
    terms = [(t, True) for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
    terms += [((t or {}).get("podAffinityTerm") or {}, False) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    node_affinity = (affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return {
        "antiAffinity": [
            {"topologyKey": t.get("topologyKey"), "required": req, "matchesSelf": selectors.matches(t.get("labelSelector"), labels) if t.get("labelSelector") else False}
            for t, req in terms
        ],
        "spread": [
            {"topologyKey": c.get("topologyKey"), "whenUnsatisfiable": c.get("whenUnsatisfiable"),
             "matchesSelf": selectors.matches(c.get("labelSelector"), labels) if c.get("labelSelector") else False}
            for c in spec.get("topologySpreadConstraints") or []
        ],
        "nodeSelector": dict(spec.get("nodeSelector") or {}),
        "nodeAffinityRequired": [t.get("matchExpressions") or [] for t in node_affinity.get("nodeSelectorTerms") or []],
    }


def _scaled_by(objects: list[Obj], kind: str, name: str) -> list[Obj]:
    """Jobs of the overlay that run `kubectl scale <kind>/<name> --replicas=N`."""
    targets = {f"{kind.lower()}/{name}", f"{kind.lower()}s/{name}", f"sts/{name}" if kind == "StatefulSet" else "", f"deploy/{name}" if kind == "Deployment" else ""}
    found = []
    for obj in objects:
        if obj.get("kind") not in ("CronJob", "Job"):
            continue
        spec = dig(obj, TEMPLATE_FIELDS[obj["kind"]] + ".spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            words = [str(w) for w in (c.get("command") or []) + (c.get("args") or [])]
            text = " ".join(shlex.quote(w) if " " in w else w for w in words)
            if "scale" not in words and " scale " not in text:
                continue
            if not any(t and t in words for t in targets):
                continue
            m = _SCALE.search(text)
            if m:
                found.append({"object": obj_id(obj), "replicas": int(m.group(1))})
    return found


def build_pods(objects: list[Obj], namespace: str, nads: dict[tuple[str, str], Obj]) -> list[Obj]:
    in_namespace = [o for o in objects if (o.get("metadata") or {}).get("namespace", namespace) == namespace]
    net_policies = [o for o in in_namespace if o.get("kind") == "NetworkPolicy"]
    multi_policies = [o for o in in_namespace if o.get("kind") == "MultiNetworkPolicy"]
    accounts = {o["metadata"]["name"]: o for o in in_namespace if o.get("kind") == "ServiceAccount"}
    hpas = [o for o in in_namespace if o.get("kind") == "HorizontalPodAutoscaler"]
    pods = []
    for obj in objects:
        kind = obj.get("kind")
        if kind not in TEMPLATE_FIELDS:
            continue
        template_field = TEMPLATE_FIELDS[kind]
        template = dig(obj, template_field) if template_field else obj
        if not isinstance(template, dict):
            continue
        base = f"{template_field}." if template_field else ""
        spec = template.get("spec") or {}
        meta = template.get("metadata") or {}
        labels = dict(meta.get("labels") or {})
        annotations = dict(meta.get("annotations") or {})
        name = obj["metadata"].get("name")
        claim_templates = {str((t.get("metadata") or {}).get("name")) for t in dig(obj, "spec.volumeClaimTemplates") or [] if isinstance(t, dict)} if kind == "StatefulSet" else set()
        volumes = {}
        for i, vol in enumerate(spec.get("volumes") or []):
            volumes[vol.get("name")] = _volume(vol, claim_templates, f"{base}spec.volumes[{i}]")
        for claim in claim_templates:
            volumes.setdefault(claim, {"name": claim, "type": "persistentVolumeClaim", "source": claim, "field": "spec.volumeClaimTemplates"})
        account_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        account = accounts.get(account_name)
        declared = dig(obj, "spec.replicas") if kind in ("StatefulSet", "Deployment", "ReplicaSet") else None
        scaled = _scaled_by(objects, kind, name) if kind in ("StatefulSet", "Deployment", "ReplicaSet") else []
        hpa_max = [h.get("spec", {}).get("maxReplicas", 1) for h in hpas
                   if (dig(h, "spec.scaleTargetRef") or {}).get("kind") == kind and (dig(h, "spec.scaleTargetRef") or {}).get("name") == name]
        max_replicas = max([declared if isinstance(declared, int) else 1] + [s["replicas"] for s in scaled] + hpa_max)
        if kind == "DaemonSet":
            max_replicas = 2  # one per node: always more than one where there is more than one node
        running = instances(kind, name, labels, max_replicas)
        pods.append({
            "id": obj_id(obj),
            "kind": kind,
            "name": name,
            "template": template_field,
            "role": ROLES.get((kind, name), "undeclared"),
            "labels": labels,
            "instances": running,
            "annotations": annotations,
            "replicas": {"declared": declared, "max": max_replicas, "scaledBy": scaled},
            "serviceAccount": {"name": account_name, "object": f"ServiceAccount/{account_name}" if account else None,
                               **_token(obj_id(obj), spec, base, account, objects)},
            "host": {
                "network": bool(spec.get("hostNetwork", False)),
                "pid": bool(spec.get("hostPID", False)),
                "ipc": bool(spec.get("hostIPC", False)),
                "shareProcessNamespace": bool(spec.get("shareProcessNamespace", False)),
            },
            "containers": _containers(spec, base, volumes),
            "volumes": sorted(volumes.values(), key=lambda v: str(v["name"])),
            "egress": netpol.effective(net_policies, running, "egress"),
            "ingress": netpol.effective(net_policies, running, "ingress"),
            "services": [],
            "pdbs": [],
            "networks": _networks(annotations, namespace, base, nads),
            "multiNetworkPolicies": [
                {
                    "object": obj_id(p),
                    "policyFor": [n.strip().rpartition("/")[2] for n in str((p["metadata"].get("annotations") or {}).get("k8s.v1.cni.cncf.io/policy-for", "")).split(",") if n.strip()],
                    "policyTypes": sorted(netpol.policy_types(p.get("spec") or {})),
                    "ingress": netpol.normalized_rules(p, "ingress"),
                    "egress": netpol.normalized_rules(p, "egress"),
                }
                for p in multi_policies if selectors.matches_any((p.get("spec") or {}).get("podSelector"), running)
            ],
            "scheduling": _scheduling(spec, labels),
            "rbac": [],
        })
    return pods
