"""FIX Orchestra "Interfaces" documents: export a run book, import one back, validate.

The Interfaces schema (io.fixprotocol.orchestra:interfaces on Maven Central) describes what a
counterparty needs to connect: per interface the service, encoding, session protocol and
security protocol; per session the identifiers, role and transports with their addresses. It is
fetched at set-up into .tools/orchestra/, never checked in.

Mapping conventions (docs/orchestra.md explains them for readers of the documents):
- one `interface` per run-book service, named `<venue id>/<service name>`;
- one `session` per environment, named `<interface>/<env>`, holding the session identifiers,
  the role and the unicast transports (endpoints with use primary/secondary/alternate, recovery
  endpoints with the extensible `use` set to the recovery kind);
- one `session` per multicast channel, named `<interface>/<env>/<channel id>`, with a ChannelID
  identifier, the channel name as DISPLAY documentation and lines A/B as primary/secondary
  multicast transports.
Everything else in a run book (provenance, schedule, heartbeat, auth, network path, ...) has no
place in the schema; `import_` leaves it as None placeholders so the gaps are visible.
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from vcpl import paths, protocols, runbook, yamlio
from vcpl.errors import VcplError
from vcpl.generate import write_atomically

# The one place the Orchestra version is pinned.
ORCHESTRA_VERSION = "1.7.3"
ARTIFACT = f"io.fixprotocol.orchestra:interfaces:{ORCHESTRA_VERSION}:jar"
ORCHESTRA_DIR = paths.ROOT / ".tools" / "orchestra"
XSD_DIR = ORCHESTRA_DIR / "xsd"
MAIN_XSD = XSD_DIR / "interfaces.xsd"
# interfaces.xsd imports dcterms.xsd, which imports dc.xsd and dcmitype.xsd; xml.xsd is the
# XML namespace schema they reference (by a remote URL, which the validator already knows).
XSD_FILES = ("interfaces.xsd", "dcterms.xsd", "dc.xsd", "dcmitype.xsd", "xml.xsd")
_STAMP = XSD_DIR / ".version"

FIXI = "http://fixprotocol.io/2020/orchestra/interfaces"
DCTERMS = "http://purl.org/dc/terms/"
ET.register_namespace("fixi", FIXI)
ET.register_namespace("dcterms", DCTERMS)

API_VERSION = runbook.API_VERSION
KIND = "VenueRunbook"
MIC_PREFIX = "MIC:"

# Run-book vocabulary <-> Orchestra names come from the protocol registry (venues/protocols.yaml):
# each session layer and encoding names its Orchestra spelling (protocolEnum_t where the XSD has one).
def _orchestra_names(kind: str) -> dict[str, str]:
    return {key: entry["orchestra"] for key, entry in protocols.registry()[kind].items()}
# tls is TCP carrying TLS; naming it per endpoint keeps dev's plain-TCP simulators distinct.
TRANSPORTS = {"tcp": "TCP", "tls": "TLS", "udp": "UDP", "wss": "WSS"}
ENDPOINT_USES = {"primary": "primary", "backup": "secondary", "dr": "alternate"}
LINE_USES = {"a": "primary", "b": "secondary"}
# Roles with an Orchestra role_t value; a multicast subscriber has none, so it is left out.
ROLES = {"initiator", "client"}
RECOVERY_KINDS = ("tcp-replay", "tcp-snapshot", "udp-rerequest", "multicast-snapshot", "multicast-retransmission")
CHANNEL_ID = "ChannelID"

# Run-book fields an Orchestra document carries, as path patterns: `[]` is any list index,
# `*` any one key. The round-trip test compares exactly these, field by field.
CARRIED_FIELDS = (
    "venue.id",
    "venue.name",
    "venue.operator",
    "venue.mic",
    "services[].name",
    "services[].protocol.name",
    "services[].protocol.version",
    "services[].protocol.encoding",
    "services[].protocol.sessionLayer",
    "services[].protocol.beginString",
    "services[].role",
    "services[].tls.required",  # an absent tls block counts as required: false
    "services[].tls.minVersion",
    "services[].environments.*.session.*",  # values come back as strings
    "services[].environments.*.endpoints.*.host",
    "services[].environments.*.endpoints.*.port",
    "services[].environments.*.endpoints.*.transport",
    "services[].environments.*.endpoints.*.path",
    "services[].environments.*.channels[].id",
    "services[].environments.*.channels[].name",
    "services[].environments.*.channels[].lines.*.group",
    "services[].environments.*.channels[].lines.*.port",
    "services[].environments.*.recovery[].kind",
    "services[].environments.*.recovery[].endpoint.host",
    "services[].environments.*.recovery[].endpoint.port",
    "services[].environments.*.recovery[].endpoint.transport",
    "services[].environments.*.recovery[].endpoint.path",
)


# --- schema -----------------------------------------------------------------------------------

def _stamp_text() -> str:
    return ARTIFACT


def _schema_present() -> bool:
    return (
        _STAMP.exists()
        and _STAMP.read_text(encoding="utf-8").strip() == _stamp_text()
        and all((XSD_DIR / name).exists() for name in XSD_FILES)
    )


def fetch_schema() -> Path:
    """Download the pinned interfaces jar with mvn (once) and extract its XSDs; return the main XSD."""
    if _schema_present():
        return MAIN_XSD
    if shutil.which("mvn") is None:
        raise VcplError("mvn not found on PATH; expected Maven to fetch the FIX Orchestra schema "
                        f"({ARTIFACT}) from Maven Central")
    jar = _download_jar()
    _extract_xsds(jar)
    _STAMP.write_text(_stamp_text() + "\n", encoding="utf-8")
    return MAIN_XSD


def _download_jar() -> Path:
    ORCHESTRA_DIR.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={ORCHESTRA_DIR}"]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise VcplError(f"`{' '.join(cmd)}` timed out after 600 s; expected Maven Central to be reachable") from None
    jar = ORCHESTRA_DIR / f"interfaces-{ORCHESTRA_VERSION}.jar"
    if result.returncode != 0 or not jar.exists():
        # Maven colours its output even in batch mode; escape codes would garble the message.
        output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr).strip()[-4000:]
        raise VcplError(f"`{' '.join(cmd)}` failed; expected it to download {ARTIFACT}:\n{output}")
    return jar


def _extract_xsds(jar: Path) -> None:
    XSD_DIR.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(jar) as archive:
            for name in XSD_FILES:
                (XSD_DIR / name).write_bytes(archive.read(f"xsd/{name}"))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise VcplError(f"{jar}: {exc}; expected a jar carrying xsd/{', xsd/'.join(XSD_FILES)}") from None


@lru_cache(maxsize=1)
def _schema() -> Any:
    import xmlschema  # deferred: only the Orchestra commands need it

    # allow="local": every schema document is on disk; nothing may be fetched while validating.
    return xmlschema.XMLSchema(str(fetch_schema()), allow="local")


def validate(xml: str) -> list[str]:
    """Every XSD violation of an Interfaces document, as `<path>: <reason>`; empty when valid."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    return [f"{_short(err.path or '/')}: {_short(err.reason or '')}" for err in _schema().iter_errors(root)]


def _short(text: str) -> str:
    # Clark notation makes every step of a path unreadable; the document's prefixes do not.
    return text.replace(f"{{{FIXI}}}", "fixi:").replace(f"{{{DCTERMS}}}", "dcterms:")


# --- export -----------------------------------------------------------------------------------

def _q(tag: str) -> str:
    return f"{{{FIXI}}}{tag}"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        child.text = text
    return child


def _address(ep: dict[str, Any]) -> str:
    # WebSocket endpoints need their request path, so they are written as a URL.
    if ep["transport"] == "wss":
        return f"wss://{ep['host']}:{ep['port']}{ep.get('path', '')}"
    return f"{ep['host']}:{ep['port']}"


def _message_cast(host: str) -> str:
    try:
        return "multicast" if ipaddress.IPv4Address(host).is_multicast else "unicast"
    except ValueError:
        return "unicast"  # a DNS name never names a multicast group here


def _add_transport(parent: ET.Element, ep: dict[str, Any], use: str) -> None:
    _add(parent, _q("transport"), name=TRANSPORTS[ep["transport"]], layer="transport",
         address=_address(ep), messageCast=_message_cast(ep["host"]), use=use)


def _documentation(parent: ET.Element, text: str, purpose: str) -> None:
    _add(_add(parent, _q("annotation")), _q("documentation"), text, purpose=purpose)


def _synopsis(rb: runbook.Runbook, service: dict[str, Any]) -> str:
    """Human-readable facts the schema has no element for (not read back by import_)."""
    text = f"{rb['venue']['name']} {service['name']}: {service['purpose']}"
    hb = service.get("heartbeat")
    if hb:
        text += f"; heartbeat ({hb['mechanism']}) every {hb['default']} {hb['unit']}"
    return text


def _add_protocol_stack(interface: ET.Element, service: dict[str, Any]) -> None:
    protocol = service["protocol"]
    _add(interface, _q("service"), name=protocol["name"], version=str(protocol["version"]), layer="application")
    _add(interface, _q("encoding"), name=_orchestra_names("encodings")[protocol["encoding"]], layer="presentation")
    _add(interface, _q("sessionProtocol"), name=_orchestra_names("sessionLayers")[protocol["sessionLayer"]],
         version=protocol.get("beginString"), layer="session")
    tls = service.get("tls", {})
    if tls.get("required"):
        _add(interface, _q("protocol"), name="TLS", version=tls.get("minVersion"), layer="transport")


def _add_identifiers_and_role(session: ET.Element, service: dict[str, Any], ids: dict[str, Any]) -> None:
    for key, value in ids.items():
        # FIX spells identifier names with a capital (SenderCompID); import_ lowers it back.
        _add(session, _q("identifier"), str(value), name=key[:1].upper() + key[1:])
    if service["role"] in ROLES:
        _add(session, _q("role"), service["role"])


def _environment_session(sessions: ET.Element, name: str, service: dict[str, Any], spec: dict[str, Any]) -> None:
    endpoints = spec.get("endpoints", {})
    recovery = spec.get("recovery", [])
    ids = spec.get("session", {})
    if not (endpoints or recovery or ids):
        return
    session = _add(sessions, _q("session"), name=name)
    for key in ENDPOINT_USES:  # primary, backup, dr: the order readers expect
        if key in endpoints:
            _add_transport(session, endpoints[key], ENDPOINT_USES[key])
    for item in recovery:
        _add_transport(session, item["endpoint"], item["kind"])
    _add_identifiers_and_role(session, service, ids)


def _channel_session(sessions: ET.Element, name: str, service: dict[str, Any], channel: dict[str, Any]) -> None:
    session = _add(sessions, _q("session"), name=f"{name}/{channel['id']}")
    for key, use in LINE_USES.items():
        line = channel["lines"][key]
        _add(session, _q("transport"), name="UDP", layer="transport",
             address=f"{line['group']}:{line['port']}", messageCast="multicast", use=use)
    _documentation(session, channel["name"], "DISPLAY")
    _add_identifiers_and_role(session, service, {CHANNEL_ID: channel["id"]})


def _interface(root: ET.Element, rb: runbook.Runbook, service: dict[str, Any]) -> None:
    name = f"{rb['venue']['id']}/{service['name']}"
    interface = _add(root, _q("interface"), name=name)
    _add_protocol_stack(interface, service)
    _documentation(interface, _synopsis(rb, service), "SYNOPSIS")
    sessions = _add(interface, _q("sessions"))
    for env in paths.ENVIRONMENTS:
        spec = service["environments"].get(env, {})
        _environment_session(sessions, f"{name}/{env}", service, spec)
        for channel in spec.get("channels", []):
            _channel_session(sessions, f"{name}/{env}", service, channel)
    if not len(sessions):
        interface.remove(sessions)  # the schema wants at least one session inside <sessions>


def _metadata(root: ET.Element, venue: dict[str, Any]) -> None:
    metadata = _add(root, _q("metadata"))
    _add(metadata, f"{{{DCTERMS}}}title", venue["name"])
    _add(metadata, f"{{{DCTERMS}}}identifier", venue["id"])
    if "mic" in venue:
        _add(metadata, f"{{{DCTERMS}}}identifier", MIC_PREFIX + venue["mic"])
    _add(metadata, f"{{{DCTERMS}}}publisher", venue["operator"])


def export(rb: runbook.Runbook) -> str:
    """The Interfaces document of one venue; the same run book always gives the same text."""
    root = ET.Element(_q("interfaces"))
    _metadata(root, rb["venue"])
    for service in rb["services"]:
        _interface(root, rb, service)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- import -----------------------------------------------------------------------------------

def _text(element: ET.Element | None) -> str | None:
    return None if element is None or element.text is None else element.text.strip()


def _venue(root: ET.Element) -> dict[str, Any]:
    metadata = root.find(_q("metadata"))
    ids = [_text(e) for e in metadata.iter(f"{{{DCTERMS}}}identifier")] if metadata is not None else []
    venue: dict[str, Any] = {
        "id": next((i for i in ids if i and not i.startswith(MIC_PREFIX)), None),
        "name": _text(metadata.find(f"{{{DCTERMS}}}title")) if metadata is not None else None,
        "operator": _text(metadata.find(f"{{{DCTERMS}}}publisher")) if metadata is not None else None,
    }
    mic = next((i for i in ids if i and i.startswith(MIC_PREFIX)), None)
    if mic:
        venue["mic"] = mic[len(MIC_PREFIX):]
    venue.update({"ownerTeam": None, "archetype": None, "runbookVersion": None})
    return venue


def _endpoint(transport: ET.Element, where: str) -> dict[str, Any]:
    address = transport.get("address") or ""
    name = transport.get("name", "")
    kind = {v: k for k, v in TRANSPORTS.items()}.get(name)
    if kind is None:
        raise VcplError(f"{where}: transport name '{name}'; expected one of {sorted(TRANSPORTS.values())}")
    if "://" in address:
        parts = urlsplit(address)
        host, port, path = parts.hostname, parts.port, parts.path or None
    else:
        host, _, port_text = address.rpartition(":")
        port, path = (int(port_text) if port_text.isdigit() else None), None
    if not host or port is None:
        raise VcplError(f"{where}: address '{address}'; expected host:port or wss://host:port/path")
    ep: dict[str, Any] = {"host": host, "port": port, "transport": kind}
    if path is not None:
        ep["path"] = path
    ep["source"] = None
    return ep


def _protocol(interface: ET.Element, where: str) -> dict[str, Any]:
    service = interface.find(_q("service"))
    encoding = interface.find(_q("encoding"))
    session = interface.find(_q("sessionProtocol"))
    layer_name = session.get("name", "") if session is not None else ""
    protocol: dict[str, Any] = {
        "name": service.get("name") if service is not None else None,
        "version": service.get("version") if service is not None else None,
        "encoding": {v: k for k, v in _orchestra_names("encodings").items()}.get(encoding.get("name", "")) if encoding is not None else None,
        "sessionLayer": {v: k for k, v in _orchestra_names("sessionLayers").items()}.get(layer_name),
    }
    if session is not None and layer_name in ("FIX4", "FIXT") and session.get("version"):
        protocol["beginString"] = session.get("version")
    if layer_name == "FIXT":
        protocol["defaultApplVerID"] = None  # not in the schema; FIXT sessions need one
    protocol["source"] = None
    return protocol


def _tls(interface: ET.Element) -> dict[str, Any] | None:
    for protocol in interface.findall(_q("protocol")):
        if protocol.get("name") in ("TLS", "FIXS"):
            tls: dict[str, Any] = {"required": True}
            if protocol.get("version"):
                tls["minVersion"] = protocol.get("version")
            tls["source"] = None
            return tls
    return None


def _session_place(interface_name: str, session_name: str) -> tuple[str, str | None]:
    """`<interface>/<env>[/<channel>]` -> (env, channel key or None)."""
    prefix = interface_name + "/"
    rest = session_name[len(prefix):].split("/") if session_name.startswith(prefix) else []
    if not rest or rest[0] not in paths.ENVIRONMENTS or len(rest) > 2:
        raise VcplError(f"session '{session_name}': expected the name {prefix}<env>[/<channel id>] "
                        f"with env one of {', '.join(paths.ENVIRONMENTS)}")
    return rest[0], rest[1] if len(rest) == 2 else None


def _identifiers(session: ET.Element) -> dict[str, str]:
    found = {}
    for identifier in session.findall(_q("identifier")):
        name = identifier.get("name") or ""
        found[name[:1].lower() + name[1:]] = _text(identifier) or ""
    return found


def _channel(session: ET.Element, where: str) -> dict[str, Any]:
    ids = _identifiers(session)
    raw_id = ids.get(CHANNEL_ID[:1].lower() + CHANNEL_ID[1:], "")
    doc = session.find(f"{_q('annotation')}/{_q('documentation')}[@purpose='DISPLAY']")
    lines = {}
    for transport in session.findall(_q("transport")):
        key = {v: k for k, v in LINE_USES.items()}.get(transport.get("use", ""))
        group, _, port = (transport.get("address") or "").rpartition(":")
        if key is None or not port.isdigit():
            raise VcplError(f"{where}: multicast transport '{transport.get('address')}' use '{transport.get('use')}'; "
                            "expected group:port with use primary (line A) or secondary (line B)")
        lines[key] = {"group": group, "port": int(port), "source": None}
    return {"id": int(raw_id) if raw_id.isdigit() else None, "name": _text(doc), "lines": lines}


def _environment(env_spec: dict[str, Any], session: ET.Element, where: str) -> None:
    for transport in session.findall(_q("transport")):
        use = transport.get("use", "primary")
        ep = _endpoint(transport, where)
        if use in RECOVERY_KINDS:
            env_spec.setdefault("recovery", []).append({"kind": use, "endpoint": ep})
        else:
            key = {v: k for k, v in ENDPOINT_USES.items()}.get(use)
            if key is None:
                raise VcplError(f"{where}: transport use '{use}'; expected primary, secondary, alternate "
                                f"or a recovery kind ({', '.join(RECOVERY_KINDS)})")
            env_spec.setdefault("endpoints", {})[key] = ep
    ids = _identifiers(session)
    if ids:
        env_spec["session"] = ids


def _role(sessions: list[ET.Element]) -> str | None:
    for session in sessions:
        role = _text(session.find(_q("role")))
        if role:
            return role
    # The exporter omits role only for multicast subscribers (role_t has no such value).
    casts = {t.get("messageCast") for s in sessions for t in s.findall(_q("transport"))}
    return "subscriber" if "multicast" in casts else None


def _service(interface: ET.Element) -> dict[str, Any]:
    name = interface.get("name", "")
    sessions = interface.findall(f"{_q('sessions')}/{_q('session')}")
    environments: dict[str, Any] = {}
    for session in sessions:
        where = f"interface '{name}' session '{session.get('name')}'"
        env, channel = _session_place(name, session.get("name", ""))
        env_spec = environments.setdefault(env, {})
        if channel is None:
            _environment(env_spec, session, where)
        else:
            env_spec.setdefault("channels", []).append(_channel(session, where))
    for env in paths.ENVIRONMENTS:
        environments.setdefault(env, None)  # the run book needs all three; Orchestra had none here
    service: dict[str, Any] = {
        "name": name.split("/", 1)[1] if "/" in name else name,
        "purpose": None,
        "protocol": _protocol(interface, name),
        "role": _role(sessions),
        "heartbeat": None,
        "sequenceReset": None,
        "cancelOnDisconnect": None,
        "auth": None,
    }
    tls = _tls(interface)
    if tls:
        service["tls"] = tls
    service["environments"] = {env: environments[env] for env in paths.ENVIRONMENTS}
    return service


def import_(xml: str) -> dict[str, Any]:
    """A run-book skeleton from an Interfaces document.

    Filled: every field in CARRIED_FIELDS. None placeholders (fields the run book needs that the
    schema cannot carry): venue.ownerTeam/archetype/runbookVersion, sources, schedule,
    certification, contacts, failover, clockSync, every `source`, services[].purpose, heartbeat,
    sequenceReset, cancelOnDisconnect, auth, protocol.defaultApplVerID (FIXT only) and
    environments.<env>.networks. Omitted (optional, cannot be carried): acknowledgements,
    endpoint cidrs/cidrsSource, multicast line sources (SSM) and tls.termination/clientCertificate.
    """
    problems = validate(xml)
    if problems:
        raise VcplError("not a valid FIX Orchestra Interfaces document:\n" + "\n".join(f"  - {p}" for p in problems))
    root = ET.fromstring(xml)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "venue": _venue(root),
        "source": None,
        "sources": None,
        "schedule": None,
        "certification": None,
        "contacts": None,
        "failover": None,
        "clockSync": None,
        "services": [_service(interface) for interface in root.findall(_q("interface"))],
        "environments": {env: {"networks": None} for env in paths.ENVIRONMENTS},
    }


# --- what is carried --------------------------------------------------------------------------

def flatten(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) pairs: `services[0].environments.prod.endpoints.primary.host`."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from flatten(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from flatten(item, f"{where}[{index}]")
    else:
        yield where, node


def _pattern(field: str) -> re.Pattern[str]:
    regex = re.escape(field).replace(r"\[\]", r"\[\d+\]").replace(r"\*", r"[^.\[\]]+")
    return re.compile(regex + "$")


_CARRIED = tuple(_pattern(f) for f in CARRIED_FIELDS)


def carried(rb: dict[str, Any]) -> dict[str, Any]:
    """The run book reduced to the fields Orchestra carries, in the form they come back."""
    view = {path: value for path, value in flatten(rb) if value is not None and any(p.match(path) for p in _CARRIED)}
    for index, service in enumerate(rb.get("services") or []):
        tls = service.get("tls") or {}
        view[f"services[{index}].tls.required"] = bool(tls.get("required", False))
    # Session identifiers travel as text.
    return {path: (str(v) if ".session." in path else v) for path, v in sorted(view.items())}


def missing(skeleton: dict[str, Any]) -> list[str]:
    """The placeholders an imported skeleton leaves for a person to fill in."""
    return [path for path, value in flatten(skeleton) if value is None]


# --- CLI --------------------------------------------------------------------------------------

def _cmd_export(args: argparse.Namespace) -> int:
    xml = export(runbook.load_venue(args.venue))
    problems = validate(xml)
    if problems:
        raise VcplError(f"{args.venue}: the exported document does not validate against {paths.relative(MAIN_XSD)}:\n"
                        + "\n".join(f"  - {p}" for p in problems))
    if args.output:
        write_atomically({Path(args.output): xml})
    else:
        print(xml, end="")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    try:
        xml = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise VcplError(f"{args.file}: {exc.strerror}; expected a FIX Orchestra Interfaces XML file") from None
    skeleton = import_(xml)
    header = "".join(f"# TODO: {path} (not carried by FIX Orchestra)\n" for path in missing(skeleton))
    text = f"# Run-book skeleton imported from {args.file}.\n{header}" + yamlio.dump(skeleton)
    if args.output:
        write_atomically({Path(args.output): text})
    else:
        print(text, end="")
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("orchestra", help="export or import FIX Orchestra Interfaces documents")
    sub = p.add_subparsers(dest="orchestra_command", required=True)
    e = sub.add_parser("export", help="write a venue's Interfaces XML (validated against the official XSD)")
    e.add_argument("venue")
    e.add_argument("-o", "--output", help="file to write; standard output when omitted")
    e.set_defaults(func=_cmd_export)
    i = sub.add_parser("import", help="turn an Interfaces XML into a run-book skeleton")
    i.add_argument("file")
    i.add_argument("-o", "--output", help="run-book YAML to write; standard output when omitted")
    i.set_defaults(func=_cmd_import)
