"""Load a venue run book and check it: the pykwalify schema first, then cross-field rules.

Every problem is reported as `<field path>: <what is wrong>; expected <what is right>`, and
the error carries the file, so a broken run book says exactly where to look.
"""
from __future__ import annotations

import copy
import hashlib
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

from vcpl import paths, yamlio
from vcpl.errors import InputError, RunbookError

Runbook = dict[str, Any]

FIX_LAYERS = {"fix", "fixt"}
TLS_TRANSPORTS = {"tls", "wss"}
# pykwalify names the data path as "Path: '/a/0/b'" or, for type errors, "Value path: '...'".
_PYKWALIFY_PATH = re.compile(r"(?:Value )?[Pp]ath: '(?P<path>[^']*)'")
_PYKWALIFY_PATTERN = re.compile(r"does not match pattern '(?P<pattern>.*)'$")
_PYKWALIFY_VALUE = re.compile(r"Value '(?P<value>.*)' (?P<rest>(?:is|does) not .*)$", re.DOTALL)

# The largest shipped run book is about 10 KiB and 11 levels deep with ~650 YAML nodes. The
# limits leave room for growth (25x, 3x, 15x) while a hostile file still fails within a second:
# the pure-Python composer that sees duplicate keys and aliases reads about 0.7 MB/s.
LIMITS = yamlio.Limits(max_bytes=256 * 1024, max_depth=32, max_nodes=10_000)

# Keys that would hold a credential's value; `make generate` copies session blocks into the
# gateway's config, so such a key must never reach a run book. Matched anywhere in a key name.
_CREDENTIAL_KEY = re.compile(
    r"pass(?:word|wd|phrase)|pwd|secret|token|api[-_]?key|private[-_]?key|credential|psk", re.IGNORECASE
)
# Keys that name where credentials live, never what they are: (parent key, key).
_CREDENTIAL_KEY_ALLOWED = {("auth", "secretKeys")}


# Validated run books by (path, content digest): validation is a pure function of both, and the
# gate, the bench and the mutation suite load the same files many times in one process.
_VALIDATED: dict[tuple[str, str], Runbook] = {}


def load(path: Path) -> Runbook:
    """Read and fully validate one run book; raise RunbookError listing every problem."""
    try:
        key = (str(Path(path).resolve()), hashlib.sha256(Path(path).read_bytes()).hexdigest())
    except OSError:
        key = None
    if key in _VALIDATED:
        return copy.deepcopy(_VALIDATED[key])
    data = _load_uncached(path)
    if key is not None:
        _VALIDATED[key] = copy.deepcopy(data)
    return data


def _load_uncached(path: Path) -> Runbook:
    shown = paths.relative(path)
    data = _read(path, shown)
    if not isinstance(data, dict):
        raise RunbookError(shown, ["top level: expected a mapping with apiVersion, kind, venue, ..."])
    # Later stages assume the earlier ones passed, so only the first stage with problems reports.
    problems = (
        credential_problems(data)
        or null_problems(data)
        or placeholder_problems(data)
        or schema_problems(data)
        or semantic_problems(data, expected_id=folder_venue_id(path))
    )
    if problems:
        raise RunbookError(shown, problems)
    return data


def _read(path: Path, shown: str) -> Any:
    try:
        return yamlio.load_strict(yamlio.read_text(path, LIMITS), LIMITS)
    except FileNotFoundError:
        raise RunbookError(shown, ["(file): not found; expected a run book such as venues/<venue>/runbook.yaml"]) from None
    except OSError as exc:
        raise RunbookError(shown, [f"(file): cannot be read ({exc.strerror}); expected a readable run book file"]) from None
    except InputError as exc:
        raise RunbookError(shown, exc.problems) from None


def folder_venue_id(path: Path) -> str | None:
    """The venue id a run book's folder implies, or None for a draft outside the venue layout.

    At `<checkout>/venues/<id>/runbook.yaml` (also a scratch copy of the repository, or the
    fixture venues) the folder name is the id the overlays and generated files use, so the run
    book must agree. A draft anywhere else (/tmp/draft.yaml, ~/drafts/runbook.yaml) is checked
    on its own `venue.id` by the schema.
    """
    folder = path.absolute().parent
    if path.name == "runbook.yaml" and folder.parent.name == paths.VENUES.name:
        return folder.name
    return None


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
    parts = [p for p in (match.group("path") if match else "").split("/") if p]
    field = field_path(parts, data) or "(top level)"
    detail = _PYKWALIFY_PATH.sub("", message).strip().rstrip(".")
    pattern = _PYKWALIFY_PATTERN.search(detail)
    if pattern:
        # A regex means little to a reader: the rule's `desc` says what is expected.
        regex = pattern.group("pattern")
        expected = _pattern_descriptions().get(regex) or f"a value matching {regex}"
        return f"{field}: {_short(repr(_value_at(parts, data)))} is not valid; expected {expected}"
    value = _PYKWALIFY_VALUE.match(detail)
    if value:
        # pykwalify quotes the whole value, which for a mapping can be the rest of the run book.
        detail = f"Value '{_short(value.group('value'))}' {value.group('rest')}"
    return f"{field}: {detail}"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=1)
def _pattern_descriptions() -> dict[str, str]:
    """pattern -> desc for every schema rule that has both."""
    found: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str) and isinstance(node.get("desc"), str):
                found[node["pattern"]] = node["desc"]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(_schema())
    return found


def _value_at(parts: list[str], data: Any) -> Any:
    node = data
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _item_path(where: str, index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{where}[{index}]" + (f"({name})" if isinstance(name, (str, int)) and name != "" else "")


def _entries(node: Any, where: str = "", owner: Any = None) -> Iterator[tuple[str, Any, Any, Any]]:
    """(field path, key, value, owner) of every mapping entry, where owner is the key of the
    mapping holding it, and (path, None, item, owner) of every list item."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            yield here, key, value, owner
            yield from _entries(value, here, key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            here = _item_path(where, index, item)
            yield here, None, item, owner
            yield from _entries(item, here, owner)


def credential_problems(data: Runbook) -> list[str]:
    """Keys that look like they hold a password, token or key, wherever they are."""
    return [
        f"{where}: '{key}' looks like a credential, which a run book must never hold; "
        "expected the secret in the secret store, referenced by key name in auth.secretKeys"
        for where, key, _, owner in _entries(data)
        if key is not None and _CREDENTIAL_KEY.search(str(key)) and (owner, key) not in _CREDENTIAL_KEY_ALLOWED
    ]


def null_problems(data: Runbook) -> list[str]:
    """Empty values: pykwalify lets an optional field be null, which the checks below do not expect."""
    return [
        f"{where}: has no value; expected a value, or leave the field out"
        for where, _, value, _ in _entries(data)
        if value is None
    ]


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
        # Only U (unverified venue facts) is acknowledged; F (firm policy) and L (this library's own
        # artefacts) are not venue facts and need no acknowledgement, like P, V and S.
        quality = declared.get(ack["source"], {}).get("quality")
        if quality in ("F", "L"):
            add(f"acknowledgements[{index}].source: '{ack['source']}' is of quality {quality} (firm policy or library), not a venue fact; "
                "expected no acknowledgement: only unverified (U) sources are acknowledged")
        elif quality != "U":
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
