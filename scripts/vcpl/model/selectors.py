"""Kubernetes label-selector semantics, as the API server applies them."""
from __future__ import annotations

from typing import Any

Labels = dict[str, str]


def _expression_matches(expr: dict[str, Any], labels: Labels) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    # An unknown operator is refused by the API server; matching nothing is the safe reading.
    return False


def matches(selector: dict[str, Any] | None, labels: Labels) -> bool:
    """A LabelSelector: absent or empty selects everything (NetworkPolicy, PDB semantics)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])


def matches_any(selector: dict[str, Any] | None, instances: list[Labels]) -> bool:
    """A selector selects a workload when it selects any of the pods the workload runs."""
    return any(matches(selector, labels) for labels in instances)


def service_matches_any(selector: dict[str, str] | None, instances: list[Labels]) -> bool:
    return any(service_matches(selector, labels) for labels in instances)


def service_matches(selector: dict[str, str] | None, labels: Labels) -> bool:
    """A Service's plain map selector: absent or empty selects no pod (the endpoints are manual)."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def is_empty(selector: dict[str, Any] | None) -> bool:
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


def namespace_names(selector: dict[str, Any]) -> list[str] | None:
    """The namespaces a namespaceSelector names exactly, when it only pins the name label."""
    match = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if set(match) == {"kubernetes.io/metadata.name"} and not exprs:
        return [match["kubernetes.io/metadata.name"]]
    if not match and len(exprs) == 1 and exprs[0].get("key") == "kubernetes.io/metadata.name" and exprs[0].get("operator") == "In":
        return sorted(exprs[0].get("values") or [])
    return None
