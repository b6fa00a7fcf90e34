"""Load a venue run book and check it: the pykwalify schema first, then cross-field rules.

Every problem is reported as `<field path>: <what is wrong>; expected <what is right>`, and
the error carries the file, so a broken run book says exactly where to look.

What `load` returns is the run book as every renderer and the gate read it: each fact carries
the source it inherits (its own, else the nearest enclosing block's, else the top-level one),
heartbeat mechanism and unit come from the session layer in venues/protocols.yaml when the run
book leaves them out, and each service environment with a heartbeat states its interval.
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

from vcpl import paths, protocols, yamlio
from vcpl.errors import InputError, RunbookError

Runbook = dict[str, Any]

API_VERSION = "vcpl.dev/v1beta1"
# apiVersion -> what to do with a run book of an earlier schema.
RETIRED_API_VERSIONS = {
    "vcpl.dev/v1alpha1": "schema v1: move each environment's `network` into a `networks` list, "
    "`failover.reconnect` into `steps`, and session layers and encodings to names of venues/protocols.yaml "
    "(docs/runbook-reference.md lists what changed in v2)",
}
TLS_TRANSPORTS = {"tls", "wss"}
# Source fields that back one other field of their mapping; they default to the mapping's source.
_DERIVED_SOURCES = {"boundsSource": ("min", "max"), "cidrsSource": ("cidrs",), "allowlistSource": ("allowlistedSourceIP",)}
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
        or version_problems(data)
        or schema_problems(data)
        or source_problems(data)
        or registry_problems(data)
    )
    if not problems:
        normalise(data)
        problems = semantic_problems(data, expected_id=folder_venue_id(path))
    if problems:
        raise RunbookError(shown, problems)
    return data


def version_problems(data: Runbook) -> list[str]:
    version = data.get("apiVersion")
    if version in RETIRED_API_VERSIONS:
        return [f"apiVersion: '{version}' is {RETIRED_API_VERSIONS[version]}; expected {API_VERSION}"]
    return []


def registry_problems(data: Runbook) -> list[str]:
    """Session layers and encodings must be registry entries; a new one is added there."""
    problems = []
    for index, service in enumerate(data["services"]):
        protocol = service["protocol"]
        for key, known in (("sessionLayer", protocols.session_layers()), ("encoding", protocols.encodings())):
            if protocol[key] not in known:
                problems.append(
                    f"services[{index}]({service['name']}).protocol.{key}: '{protocol[key]}' is not in venues/protocols.yaml; "
                    f"expected one of {sorted(known)}, or a new entry there with its facts"
                )
    return problems


def normalise(rb: Runbook) -> None:
    """Fill what a run book may leave implicit (see the module docstring), in place."""
    _inherit_sources(rb, _schema(), rb["source"])
    for service in rb["services"]:
        heartbeat = service.get("heartbeat")
        if heartbeat is None:
            continue
        layer = protocols.layer(service["protocol"]["sessionLayer"])["heartbeat"]
        heartbeat.setdefault("mechanism", layer["mechanism"])
        heartbeat.setdefault("unit", layer["unit"])
        for spec in service["environments"].values():
            spec.setdefault("heartbeat", heartbeat["default"])


def _inherit_sources(node: Any, schema: dict[str, Any], inherited: str) -> None:
    """Give every mapping whose schema has a `source` the nearest enclosing source."""
    if isinstance(node, list) and schema.get("type") == "seq":
        for item in node:
            _inherit_sources(item, schema["sequence"][0], inherited)
        return
    if not isinstance(node, dict) or schema.get("type") != "map":
        return
    fields = schema.get("mapping", {})
    if "source" in fields:
        node.setdefault("source", inherited)
        inherited = node["source"]
    for derived, triggers in _DERIVED_SOURCES.items():
        if derived in fields and any(t in node for t in triggers):
            node.setdefault(derived, inherited)
    for key, value in node.items():
        if key in fields and key not in ("sources", "acknowledgements"):
            _inherit_sources(value, fields[key], inherited)


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


def source_problems(rb: Runbook) -> list[str]:
    """Every source a fact cites (or a block passes down) is declared under `sources`."""
    declared = rb["sources"]
    return [
        f"{where}: source '{key}' is not declared; expected one of sources: {sorted(declared)}"
        for where, key in _walk_sources({k: v for k, v in rb.items() if k not in ("sources", "acknowledgements")}, "")
        if key not in declared
    ]


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
        problems.extend(_networks_problems(spec["networks"], f"environments.{env}.networks"))
    problems.extend(_reconnect_problems(rb))
    return problems


def primary_network(rb: Runbook, env: str) -> dict[str, Any]:
    return rb["environments"][env]["networks"][0]


def network_paths(rb: Runbook, env: str) -> list[str]:
    return [n["path"] for n in rb["environments"][env]["networks"]]


def vpn_network(rb: Runbook, env: str) -> dict[str, Any] | None:
    return next((n for n in rb["environments"][env]["networks"] if n["path"] == "ipsec-vpn"), None)


def allowlisted_network(rb: Runbook, env: str) -> dict[str, Any] | None:
    """The direct path whose source address the venue allow-lists (an egress-gateway node holds it).
    On an ipsec-vpn path the allow-listed address is the tunnel's inner source instead."""
    return next((n for n in rb["environments"][env]["networks"] if "allowlistedSourceIP" in n and n["path"] != "ipsec-vpn"), None)


def _reconnect_problems(rb: Runbook) -> list[str]:
    problems = []
    roles = {role for s in rb["services"] for role in s["environments"]["prod"].get("endpoints", {})}
    for index, step in enumerate(rb["failover"]["reconnect"]["steps"]):
        role = step.get("endpoint", "any")
        if role != "any" and role not in roles:
            problems.append(f"failover.reconnect.steps[{index}].endpoint: '{role}' but no service has a {role} endpoint in prod; "
                            f"expected one of {sorted(roles | {'any'})}")
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
    layer = protocols.layer(protocol["sessionLayer"])
    quickfix = layer["engine"] == "quickfix"
    if quickfix and "beginString" not in protocol:
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
        for env, spec in service["environments"].items():
            value = spec.get("heartbeat", default)
            if value == 0 and env not in heartbeat.get("zeroAllowedIn", []):
                add(f"{where}.environments.{env}.heartbeat: 0 but the venue does not allow it in {env}; "
                    f"expected a positive interval (heartbeat.zeroAllowedIn lists where 0 is accepted: {heartbeat.get('zeroAllowedIn', [])})")
            elif value != 0 and ((low is not None and value < low) or (high is not None and value > high)):
                add(f"{where}.environments.{env}.heartbeat: {value} is outside [{low}, {high}] {heartbeat['unit']}; expected a value within the venue's bounds")
    for env, spec in service["environments"].items():
        if "heartbeat" in spec and not heartbeat:
            add(f"{where}.environments.{env}.heartbeat: set but the service has no heartbeat block; expected heartbeat.default first")

    sequence = service.get("failoverSequence")
    if sequence:
        jumps = "jump" in (sequence["backup"], sequence.get("dr"))
        if jumps and "jumpBy" not in sequence:
            add(f"{where}.failoverSequence.jumpBy: missing; expected how far the venue advances its sequence numbers on a jump")
        if not jumps and "jumpBy" in sequence:
            add(f"{where}.failoverSequence.jumpBy: set but neither backup nor dr is 'jump'; expected jumpBy only with jump")

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
        network = primary_network(rb, env)
        endpoints = _endpoints_of(spec)
        if service["purpose"] != "market-data" and "primary" not in spec.get("endpoints", {}):
            add(f"{env_where}.endpoints.primary: missing; expected the {service['purpose']} endpoint for {env}")
        if service["purpose"] == "market-data" and not spec.get("channels") and not spec.get("endpoints"):
            add(f"{env_where}: has neither channels nor endpoints; expected multicast channels or a primary endpoint")
        if layer["transport"] == "multicast" and spec.get("endpoints"):
            add(f"{env_where}.endpoints: session layer {protocol['sessionLayer']} is multicast; expected channels (and recovery), not endpoints")
        if layer["transport"] != "multicast" and spec.get("channels"):
            add(f"{env_where}.channels: session layer {protocol['sessionLayer']} is not multicast (venues/protocols.yaml); expected endpoints")
        if quickfix:
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
        problems.extend(_channel_problems(spec.get("channels", []), spec.get("recovery", []), env_where))
        problems.extend(_recovery_problems(spec.get("recovery", []), env_where))
    return problems


def _recovery_problems(recovery: list[dict[str, Any]], where: str) -> list[str]:
    problems = []
    for index, item in enumerate(recovery):
        here = f"{where}.recovery[{index}]"
        if item["kind"] == "multicast-retransmission" and "lines" not in item:
            problems.append(f"{here}.lines: missing; expected the A and B multicast lines the venue retransmits on")
        if item["kind"] != "multicast-retransmission" and "lines" in item:
            problems.append(f"{here}.lines: set for kind {item['kind']}; expected lines only with kind multicast-retransmission")
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
    for index, ports in enumerate(ep.get("assigns", {}).get("ports", [])):
        if ports.get("endPort", ports["port"]) < ports["port"]:
            problems.append(f"{where}.assigns.ports[{index}].endPort: {ports['endPort']} is below port {ports['port']}; expected the last port of the range")
    # dev talks to in-cluster simulators, which may run without TLS.
    if tls.get("required", False) and env != "dev" and ep["transport"] not in TLS_TRANSPORTS:
        problems.append(f"{where}.transport: '{ep['transport']}' but the service requires TLS; expected tls or wss")
    if ep["transport"] == "wss" and "path" not in ep:
        problems.append(f"{where}.path: missing; expected the WebSocket request path, e.g. /v2")
    return problems


def _channel_problems(channels: list[dict[str, Any]], recovery: list[dict[str, Any]], where: str) -> list[str]:
    """A and B distinct and multicast, every group/port used once, retransmission lines included."""
    problems = []
    seen: dict[tuple[str, int], str] = {}
    sets = [(f"{where}.channels[{i}]({c['id']})", c["lines"]) for i, c in enumerate(channels)]
    sets += [(f"{where}.recovery[{i}]", r["lines"]) for i, r in enumerate(recovery) if "lines" in r]
    for here, lines in sets:
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


def _networks_problems(networks: list[dict[str, Any]], where: str) -> list[str]:
    problems = []
    for index, network in enumerate(networks):
        problems.extend(_network_problems(network, f"{where}[{index}]"))
    paths_ = [n["path"] for n in networks]
    if "in-cluster" in paths_ and len(networks) > 1:
        problems.append(f"{where}: in-cluster with other paths; expected in-cluster alone (the simulator needs no other path)")
    if paths_.count("ipsec-vpn") > 1:
        problems.append(f"{where}: {paths_.count('ipsec-vpn')} ipsec-vpn paths; expected at most one VPN per environment")
    if sum("allowlistedSourceIP" in n for n in networks) > 1:
        problems.append(f"{where}: more than one allowlistedSourceIP; expected one egress address per environment, on the path that needs it")
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
    return problems
