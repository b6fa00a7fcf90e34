"""What the gateway's engines will use: the configuration files the gateway pod really reads
(through its containers' arguments and mounts), parsed, and the connections they imply."""
from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from vcpl.model.pods import resolve_path

Obj = dict[str, Any]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_SWAN_ADDRS = re.compile(r"^\s*remote_addrs\s*=\s*(?P<v>.+)$", re.M)
_SWAN_TS = re.compile(r"^\s*remote_ts\s*=\s*(?P<v>.+)$", re.M)


def _arg_value(container: Obj, flag: str) -> str | None:
    words = container["command"] + container["args"]
    for i, word in enumerate(words):
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
        if word == flag and i + 1 < len(words):
            return words[i + 1]
    return None


def read_file(container: Obj, path: str, objects: list[Obj]) -> Obj | None:
    """The text a container sees at `path` when a ConfigMap serves it: {object, key, text, mount}."""
    mount = resolve_path(container, path)
    if mount is None or mount["type"] != "configMap":
        return None
    rel = posixpath.relpath(posixpath.normpath(path), mount["path"])
    if mount["subPath"]:
        key = mount["subPath"] if rel == "." else None
    else:
        key = rel
        for item in mount["items"]:
            if item.get("path") == rel:
                key = item.get("key")
                break
        else:
            if mount["items"]:
                key = None  # items restrict the files to those listed
    if key is None:
        return None
    cm = next((o for o in objects if o.get("kind") == "ConfigMap" and o["metadata"].get("name") == mount["source"]), None)
    if cm is None:
        return None
    text = (cm.get("data") or {}).get(key)
    if not isinstance(text, str):
        return None
    return {"object": f"ConfigMap/{mount['source']}", "key": key, "text": text, "mount": mount}


def parse_quickfix(text: str) -> tuple[dict[str, str], list[Obj]]:
    """QuickFIX settings: `Key=Value` under [DEFAULT] and repeated [SESSION] headers, `#` comments.
    A key repeated within a section keeps its last value, as the engine reads it."""
    default: dict[str, str] = {}
    sessions: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip().upper()
            if name == "DEFAULT":
                current = default
            elif name == "SESSION":
                current = {}
                sessions.append(current)
            else:
                current = None
            continue
        if current is None or "=" not in line:
            continue
        key, value = line.split("=", 1)
        current[key.strip()] = value.strip()
    return default, [{"index": i + 1, "own": own, "settings": {**default, **own}} for i, own in enumerate(sessions)]


def quickfix_field(key_prefix: str, session: Obj, key: str) -> str:
    if key in session["own"] or key not in session["settings"]:
        return f"{key_prefix}.SESSION[{session['index']}].{key}"
    return f"{key_prefix}.DEFAULT.{key}"


def parse_stunnel(text: str) -> list[Obj]:
    services, current = [], None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = {"name": line[1:-1].strip(), "client": False, "accept": None, "connect": None,
                       "verified": False, "checkHost": None}
            services.append(current)
            continue
        if current is None or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        key = key.lower()
        if key == "client":
            current["client"] = value.lower() in ("yes", "true", "1")
        elif key in ("accept", "connect"):
            current[key] = value
        elif key == "checkhost":
            current["checkHost"] = value
        # The peer's certificate is only checked with verifyChain/verifyPeer, or the legacy verify >= 2.
        elif key in ("verifychain", "verifypeer") and value.lower() in ("yes", "true", "1"):
            current["verified"] = True
        elif key == "verify" and value.isdigit() and int(value) >= 2:
            current["verified"] = True
    return services


def _host_port(text: str | None) -> tuple[str, int | None]:
    if not text:
        return "", None
    host, _, port = text.rpartition(":")
    if not host:
        host, port = "", text
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return host, None


def _gateway_container(pod: Obj) -> Obj | None:
    with_config = [c for c in pod["containers"] if _arg_value(c, "--config")]
    named = [c for c in pod["containers"] if c["name"] == "gateway"]
    return (with_config or named or [None])[0]


def _quickfix_targets(files: list[Obj], stunnels: list[Obj]) -> list[Obj]:
    accepts = {}
    for conf in stunnels:
        for svc in conf["services"]:
            if not svc["client"] or not svc["accept"]:
                continue
            _, accept_port = _host_port(svc["accept"])
            accepts[accept_port] = {"connect": svc["connect"], "field": f"{conf['field']}[{svc['name']}].connect", "object": conf["object"],
                             "verified": svc["verified"], "checkHost": svc["checkHost"], "section": f"{conf['field']}[{svc['name']}]"}
    targets = []
    for qf in files:
        for session in qf["sessions"]:
            settings = session["settings"]
            order = 0
            for suffix in [""] + [str(n) for n in range(1, 10)]:
                host_key, port_key = f"SocketConnectHost{suffix}", f"SocketConnectPort{suffix}"
                if host_key not in settings and port_key not in settings:
                    continue
                host = settings.get(host_key, "")
                port: int | None
                try:
                    port = int(settings.get(port_key, ""))
                except ValueError:
                    port = None
                target = {
                    "service": session.get("service"), "order": order, "host": host, "port": port,
                    "source": "quickfix", "object": qf["object"],
                    "field": quickfix_field(qf["field"], session, host_key),
                    "hostField": quickfix_field(qf["field"], session, host_key),
                    "portField": quickfix_field(qf["field"], session, port_key),
                    "tlsField": quickfix_field(qf["field"], session, "SocketUseSSL"),
                }
                via_tunnel = accepts.get(port) if host in LOOPBACK else None
                if via_tunnel:
                    real_host, real_port = _host_port(via_tunnel["connect"])
                    target.update(host=real_host, port=real_port, tls=True, via="sidecar", object=via_tunnel["object"],
                                  field=via_tunnel["field"], hostField=via_tunnel["field"], portField=via_tunnel["field"],
                                  tlsField=via_tunnel["section"], verified=via_tunnel["verified"], checkHost=via_tunnel["checkHost"])
                else:
                    tls = settings.get("SocketUseSSL", "N").upper() == "Y"
                    # QuickFIX verifies the venue's certificate against its CA file when TLS is on.
                    target.update(tls=tls, via="native" if tls else "plaintext", verified=tls, checkHost=host if tls else None)
                targets.append(target)
                order += 1
    return targets


def build(pods: list[Obj], objects: list[Obj]) -> Obj:
    out: Obj = {"gateway": None, "quickfix": [], "channels": [], "stunnel": [], "swanctl": [], "targets": [], "stores": []}
    gateway_pod = next((p for p in pods if p["role"] == "gateway"), None)
    if gateway_pod is None:
        return out
    container = _gateway_container(gateway_pod)
    for c in gateway_pod["containers"]:
        image = str(c.get("image") or "")
        if "stunnel" in image or c["name"] == "stunnel":
            path = next((a for a in c["args"] if a.endswith(".conf")), "/etc/stunnel/stunnel.conf")
            found = read_file(c, path, objects)
            if found:
                out["stunnel"].append({"object": found["object"], "field": f"data[{found['key']}]", "services": parse_stunnel(found["text"])})
        if "strongswan" in image or c["name"] == "strongswan":
            path = next((e.get("value") for e in c["env"] if e.get("name") == "SWANCTL_CONF" and e.get("value")), "/etc/swanctl/swanctl.conf")
            found = read_file(c, path, objects)
            if found:
                out["swanctl"].append({
                    "object": found["object"], "field": f"data[{found['key']}]",
                    "remoteAddrs": [a.strip() for m in _SWAN_ADDRS.finditer(found["text"]) for a in m.group("v").split(",")],
                    "remoteTs": [a.strip() for m in _SWAN_TS.finditer(found["text"]) for a in m.group("v").split(",")],
                })
    if container is None:
        return out
    state_dir = _arg_value(container, "--state-dir")
    if state_dir:
        _add_store(out, container, None, "gateway state (--state-dir)", state_dir, f"{container['field']}.args", gateway_pod["id"])
    config_path = _arg_value(container, "--config")
    found = read_file(container, config_path, objects) if config_path else None
    config = None
    if found:
        try:
            config = json.loads(found["text"])
        except json.JSONDecodeError:
            config = None
    if found is None or not isinstance(config, dict):
        return out
    out["gateway"] = {"object": found["object"], "field": f"data[{found['key']}]", "path": config_path, "config": config}
    listed = config.get("services")
    services: list[Any] = listed if isinstance(listed, list) else []
    qf_files: dict[str, Obj] = {}
    for i, service in enumerate(services):
        if not isinstance(service, dict):
            continue
        name = service.get("name")
        settings_path = service.get("quickfixSettings")
        if isinstance(settings_path, str):
            if settings_path not in qf_files:
                qf = read_file(container, settings_path, objects)
                if qf:
                    default, sessions = parse_quickfix(qf["text"])
                    qf_files[settings_path] = {"object": qf["object"], "field": f"data[{qf['key']}]", "path": settings_path,
                                               "default": default, "sessions": sessions, "_next": 0}
            qf_entry = qf_files.get(settings_path)
            # Sessions belong to the services that name the file, in order.
            if qf_entry and qf_entry["_next"] < len(qf_entry["sessions"]):
                qf_entry["sessions"][qf_entry["_next"]]["service"] = name
                qf_entry["_next"] += 1
        channels_path = service.get("channelsFile")
        if isinstance(channels_path, str):
            ch = read_file(container, channels_path, objects)
            parsed = None
            if ch:
                try:
                    parsed = json.loads(ch["text"])
                except json.JSONDecodeError:
                    parsed = None
            out["channels"].append({"service": name, "object": ch["object"] if ch else None,
                                    "field": f"data[{ch['key']}]" if ch else f"data[gateway.json].services[{i}].channelsFile",
                                    "path": channels_path, "config": parsed})
        if not isinstance(settings_path, str):
            for j, ep in enumerate(service.get("endpoints") or []):
                if not isinstance(ep, dict):
                    continue
                tls = ep.get("transport") in ("tls", "wss")
                where = f"{out['gateway']['field']}.services[{i}].endpoints[{j}]"
                out["targets"].append({
                    "service": name, "order": j, "role": ep.get("role"), "host": ep.get("host"), "port": ep.get("port"),
                    "tls": tls, "via": "native" if tls else "plaintext", "source": "gateway.json",
                    "verified": tls, "checkHost": ep.get("host") if tls else None,
                    "object": out["gateway"]["object"], "field": where,
                    "hostField": f"{where}.host", "portField": f"{where}.port", "tlsField": f"{where}.transport",
                })
    for qf in qf_files.values():
        qf.pop("_next")
        out["quickfix"].append(qf)
        for session in qf["sessions"]:
            store = session["settings"].get("FileStorePath")
            if store:
                _add_store(out, container, session.get("service"), "FIX store (FileStorePath)", store,
                           quickfix_field(qf["field"], session, "FileStorePath"), qf["object"])
    out["targets"] += _quickfix_targets(out["quickfix"], out["stunnel"])
    return out


def _add_store(out: Obj, container: Obj, service: str | None, what: str, path: str, field: str, obj: str | None = None) -> None:
    mount = resolve_path(container, path)
    out["stores"].append({
        "service": service, "what": what, "path": path, "object": obj,
        "volume": mount["volume"] if mount else None,
        "type": mount["type"] if mount else "container-filesystem",
        "field": field,
        "mountField": mount["field"] if mount else None,
    })
