"""Load a venue run book and check it: the pykwalify schema first, then cross-field rules.

Every problem is reported as `<field path>: <what is wrong>; expected <what is right>`, and
the error carries the file, so a broken run book says exactly where to look.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import zoneinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml
from pykwalify.core import Core
from pykwalify.errors import PyKwalifyException

from vcpl import paths
from vcpl.errors import RunbookError

Runbook = dict[str, Any]

FIX_LAYERS = {"fix", "fixt"}
TLS_TRANSPORTS = {"tls", "wss"}
_PYKWALIFY_PATH = re.compile(r"Path: '(?P<path>[^']*)'")


def load(path: Path) -> Runbook:
    """Read and fully validate one run book; raise RunbookError listing every problem."""
    shown = paths.relative(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunbookError(shown, ["file not found; expected venues/<venue>/runbook.yaml"]) from None
    except yaml.YAMLError as exc:
        raise RunbookError(shown, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise RunbookError(shown, ["top level: expected a mapping with apiVersion, kind, venue, ..."])
    problems = placeholder_problems(data)
    if not problems:
        problems = schema_problems(data)
    if not problems:
        problems = semantic_problems(data, expected_id=path.parent.name)
    if problems:
        raise RunbookError(shown, problems)
    return data


def load_venue(venue: str) -> Runbook:
    return load(paths.runbook_path(venue))


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return yaml.safe_load(paths.SCHEMA.read_text(encoding="utf-8"))


def schema_problems(data: Runbook) -> list[str]:
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    core = Core(source_data=data, schema_data=_schema())
    try:
        core.validate(raise_exception=False)
    except PyKwalifyException as exc:  # a schema defect, not a run-book one
        return [f"schema could not be applied: {exc}"]
    return [_describe_pykwalify(str(err), data) for err in core.errors]


def _describe_pykwalify(message: str, data: Runbook) -> str:
    match = _PYKWALIFY_PATH.search(message)
    raw_path = match.group("path") if match else ""
    field = field_path([p for p in raw_path.split("/") if p], data)
    detail = _PYKWALIFY_PATH.sub("", message).strip().rstrip(".")
    return f"{field or '(top level)'}: {detail}"


def placeholder_problems(data: Any, where: str = "") -> list[str]:
    """Every value a scaffold left to fill (`FILL-IN <kind>: <what>`), by field path."""
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in placeholder_problems(value, f"{where}.{key}" if where else str(key))]
    if isinstance(data, list):
        found = []
        for index, item in enumerate(data):
            name = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) and "FILL-IN" not in item["name"] else None
            found += placeholder_problems(item, f"{where}[{index}]" + (f"({name})" if name else ""))
        return found
    if isinstance(data, str) and "FILL-IN " in data:
        hint = data[data.index("FILL-IN ") + len("FILL-IN "):]
        return [f"{where}: fill in {hint}"]
    return []


def field_path(parts: list[str], data: Any) -> str:
    """`services/0/heartbeat` -> `services[0](ilink3).heartbeat`: the list item's name helps."""
    out = ""
    node = data
    for part in parts:
        if isinstance(node, list) and part.isdigit():
            index = int(part)
            node = node[index] if index < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            out += f"[{index}]" + (f"({name})" if name else "")
        else:
            node = node.get(part) if isinstance(node, dict) else None
            out += ("." if out else "") + part
    return out


def _walk_sources(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield (field path, source key) for every source reference in the run book."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else key
            if key in {"source", "boundsSource", "allowlistSource", "cidrsSource"} and isinstance(value, str):
                yield here, value
            else:
                yield from _walk_sources(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            name = item.get("name") if isinstance(item, dict) else None
            yield from _walk_sources(item, f"{where}[{index}]" + (f"({name})" if name else ""))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def semantic_problems(rb: Runbook, expected_id: str | None = None) -> list[str]:
    problems: list[str] = []
    add = problems.append
    venue_id = rb["venue"]["id"]
    if expected_id is not None and venue_id != expected_id:
        add(f"venue.id: is '{venue_id}'; expected the folder name '{expected_id}'")

    declared = rb["sources"]
    for index, ack in enumerate(rb.get("acknowledgements", [])):
        if declared.get(ack["source"], {}).get("quality") != "U":
            add(f"acknowledgements[{index}].source: '{ack['source']}' is not a declared U source; expected an unverified source to acknowledge")
    for where, key in _walk_sources({k: v for k, v in rb.items() if k not in ("sources", "acknowledgements")}, ""):
        if key not in declared:
            add(f"{where}: source '{key}' is not declared; expected one of sources: {sorted(declared)}")

    problems.extend(_schedule_problems(rb["schedule"]))
    clock = rb["clockSync"]
    if clock["required"] and "maxDivergenceMicros" not in clock:
        add("clockSync.maxDivergenceMicros: missing; expected the RTS 25 tolerance in microseconds when clock sync is required")

    names = [s["name"] for s in rb["services"]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        add(f"services: name '{dup}' is used more than once; expected unique service names")

    for index, service in enumerate(rb["services"]):
        problems.extend(_service_problems(rb, service, f"services[{index}]({service['name']})"))

    for env, spec in rb["environments"].items():
        problems.extend(_network_problems(spec["network"], f"environments.{env}.network"))
    return problems


def _schedule_problems(schedule: dict[str, Any]) -> list[str]:
    problems = []
    zone = schedule["timeZone"]
    try:
        zoneinfo.ZoneInfo(zone)
        valid_zone = "/" in zone or zone == "UTC"
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        valid_zone = False
    if not valid_zone:
        problems.append(f"schedule.timeZone: '{zone}' is not an IANA time zone; expected e.g. America/Chicago")
    kinds = [k for k in ("continuous", "weekly", "daily") if schedule.get(k)]
    if len(kinds) != 1:
        problems.append(
            f"schedule: has {kinds or 'none'} of continuous/weekly/daily; expected exactly one"
        )
    return problems


def _service_problems(rb: Runbook, service: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    add = problems.append
    protocol = service["protocol"]
    layer = protocol["sessionLayer"]
    if layer in FIX_LAYERS and "beginString" not in protocol:
        add(f"{where}.protocol.beginString: missing; expected FIX.4.2, FIX.4.4 or FIXT.1.1 for a FIX session layer")
    if protocol.get("beginString") == "FIXT.1.1" and "defaultApplVerID" not in protocol:
        add(f"{where}.protocol.defaultApplVerID: missing; expected e.g. FIX.5.0SP2 with FIXT.1.1")

    heartbeat = service.get("heartbeat")
    if heartbeat:
        low, high, default = heartbeat.get("min"), heartbeat.get("max"), heartbeat["default"]
        if low is not None and high is not None and low > high:
            add(f"{where}.heartbeat: min {low} is above max {high}; expected min <= max")
        if (low is not None and default < low) or (high is not None and default > high):
            add(f"{where}.heartbeat.default: {default} is outside [{low}, {high}] {heartbeat['unit']}; expected a value within the venue's bounds")
        if ("min" in heartbeat or "max" in heartbeat) and "boundsSource" not in heartbeat:
            add(f"{where}.heartbeat.boundsSource: missing; expected the source of min/max")

    auth = service["auth"]
    keys = auth.get("secretKeys", [])
    if auth["method"] == "none" and keys:
        add(f"{where}.auth.secretKeys: auth method is 'none'; expected no secret keys")
    if auth["method"] != "none" and not keys:
        add(f"{where}.auth.secretKeys: missing; expected the names of the keys method '{auth['method']}' needs")
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        add(f"{where}.auth.secretKeys: '{dup}' is listed twice; expected unique key names")

    tls = service.get("tls", {"required": False})
    for env, spec in service["environments"].items():
        env_where = f"{where}.environments.{env}"
        network = rb["environments"][env]["network"]
        endpoints = _endpoints_of(spec)
        if service["purpose"] != "market-data" and "primary" not in spec.get("endpoints", {}):
            add(f"{env_where}.endpoints.primary: missing; expected the {service['purpose']} endpoint for {env}")
        if service["purpose"] == "market-data" and not spec.get("channels") and not spec.get("endpoints"):
            add(f"{env_where}: has neither channels nor endpoints; expected multicast channels or a primary endpoint")
        if layer in FIX_LAYERS:
            session = spec.get("session", {})
            for key in ("senderCompID", "targetCompID"):
                if not session.get(key):
                    add(f"{env_where}.session.{key}: missing; expected the FIX {key} for {env}")
        eps = spec.get("endpoints", {})
        for role in ("backup", "dr"):
            if role in eps and (eps[role]["host"], eps[role]["port"]) == (eps["primary"]["host"], eps["primary"]["port"]):
                add(f"{env_where}.endpoints.{role}: same host and port as primary; expected a distinct {role} gateway")
        for ep_where, ep in endpoints:
            full = f"{env_where}.{ep_where}"
            problems.extend(_endpoint_problems(ep, full, network, tls, env))
        problems.extend(_channel_problems(spec.get("channels", []), env_where))
    return problems


def _endpoints_of(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"endpoints.{role}", ep) for role, ep in spec.get("endpoints", {}).items()]
    found += [(f"recovery[{i}].endpoint", r["endpoint"]) for i, r in enumerate(spec.get("recovery", []))]
    return found


def _endpoint_problems(ep: dict[str, Any], where: str, network: dict[str, Any], tls: dict[str, Any], env: str) -> list[str]:
    problems = []
    host = ep["host"]
    if network["path"] == "in-cluster":
        suffix = f".{network.get('simulatorNamespace')}.svc.cluster.local"
        if not host.endswith(suffix):
            problems.append(f"{where}.host: '{host}' is not a simulator Service; expected <name>{suffix} in {env}")
    elif not _is_ip(host) and not ep.get("cidrs"):
        problems.append(f"{where}.cidrs: missing for DNS name '{host}'; expected the CIDRs it resolves into, for the egress allow-list")
    if ep.get("cidrs") and "cidrsSource" not in ep:
        problems.append(f"{where}.cidrsSource: missing; expected the source of the CIDRs")
    # dev talks to in-cluster simulators, which may run without TLS.
    if tls.get("required", False) and env != "dev" and ep["transport"] not in TLS_TRANSPORTS:
        problems.append(f"{where}.transport: '{ep['transport']}' but the service requires TLS; expected tls or wss")
    if ep["transport"] == "wss" and "path" not in ep:
        problems.append(f"{where}.path: missing; expected the WebSocket request path, e.g. /v2")
    return problems


def _channel_problems(channels: list[dict[str, Any]], where: str) -> list[str]:
    problems = []
    seen: dict[tuple[str, int], str] = {}
    for index, channel in enumerate(channels):
        lines = channel["lines"]
        here = f"{where}.channels[{index}]({channel['id']})"
        if lines["a"]["group"] == lines["b"]["group"]:
            problems.append(f"{here}.lines.b.group: same group as line A ({lines['a']['group']}); expected distinct A and B groups")
        for line in ("a", "b"):
            group = lines[line]["group"]
            if not ipaddress.IPv4Address(group).is_multicast:
                problems.append(f"{here}.lines.{line}.group: {group} is not a multicast address; expected 224.0.0.0/4")
            key = (group, lines[line]["port"])
            if key in seen:
                problems.append(f"{here}.lines.{line}: {group}:{key[1]} is already used by {seen[key]}; expected unique group/port")
            seen[key] = f"{here}.lines.{line}"
    return problems


def _network_problems(network: dict[str, Any], where: str) -> list[str]:
    problems = []
    path = network["path"]
    if path == "in-cluster" and "simulatorNamespace" not in network:
        problems.append(f"{where}.simulatorNamespace: missing; expected the simulator namespace for path in-cluster")
    if path == "ipsec-vpn" and "vpn" not in network:
        problems.append(f"{where}.vpn: missing; expected the IPsec peer and remote CIDRs for path ipsec-vpn")
    if path != "ipsec-vpn" and "vpn" in network:
        problems.append(f"{where}.vpn: present but path is '{path}'; expected path ipsec-vpn")
    if "allowlistedSourceIP" in network and "allowlistSource" not in network:
        problems.append(f"{where}.allowlistSource: missing; expected the source of the allow-listed IP")
    return problems
