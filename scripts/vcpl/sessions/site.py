"""What one overlay gives its gateway container, as files at the paths the pod would see them.

A `Site` is built from `kustomize build overlays/<env>/<venue>`: the gateway StatefulSet's volume
mounts say which ConfigMap keys, Secret keys and state directories appear where. Inside the
session sandbox (`vcpl.sessions.sandbox`) those paths are real: the reference client opens
`/etc/venue-gateway/fix/session.cfg` exactly as the engine in the pod would.

The simulator does not read the rendered files: it reads the run book (`site.runbook`), which is
the venue's truth. A client that logs on with what the overlay rendered therefore proves the
rendering agrees with the run book.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcpl import render, runbook
from vcpl.errors import VcplError

GATEWAY_CONTAINER = "gateway"


@dataclass(frozen=True)
class Finding:
    """One way the rendered settings and the simulated venue disagree (or one check that passed)."""

    venue: str
    env: str
    service: str          # the run book's service name, or "" for the whole venue
    check: str            # logon, heartbeat, test-request, failover-order, sequence, reconnect-policy, ...
    field: str            # the setting at fault: "session.cfg SenderCompID", "gateway.json services[ouch].endpoints"
    ok: bool
    detail: str           # what was expected and what happened

    def __str__(self) -> str:
        where = f"{self.venue} {self.env}" + (f" {self.service}" if self.service else "")
        verdict = "ok  " if self.ok else "FAIL"
        return f"{verdict} {where}: {self.check}: {self.field}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("venue", "env", "service", "check", "field", "ok", "detail")}


@dataclass(frozen=True)
class Mount:
    path: str                      # absolute mount path in the container
    files: dict[str, str]          # relative file name -> content
    persistent: bool               # survives a pod restart (PVC) or not (emptyDir, ConfigMap are re-created)
    writable: bool


@dataclass
class Site:
    venue: str
    env: str
    runbook: dict[str, Any]
    objects: list[dict[str, Any]]
    mounts: list[Mount]
    credentials: dict[str, str]    # secret key -> the value the simulator also expects
    hosts: dict[str, str] = field(default_factory=dict)        # rendered host name -> sandbox address
    interfaces: dict[str, str] = field(default_factory=dict)   # feed NIC name (channels.json) -> its address
    container_env: dict[str, str] = field(default_factory=dict)  # the gateway container's literal env (TZ, ...)

    # --- what the overlay rendered ----------------------------------------------------------
    def config(self, mount_path: str, name: str) -> str | None:
        for m in self.mounts:
            if m.path == mount_path and name in m.files:
                return m.files[name]
        return None

    @property
    def gateway(self) -> dict[str, Any]:
        return json.loads(self._file_named("gateway.json") or "{}")

    @property
    def channels(self) -> dict[str, Any] | None:
        text = self._file_named("channels.json")
        return json.loads(text) if text else None

    @property
    def session_cfg(self) -> str | None:
        return self._file_named("session.cfg")

    def path_of(self, name: str) -> str | None:
        """The absolute path at which the pod sees a rendered file, e.g. session.cfg."""
        for m in self.mounts:
            if name in m.files:
                return f"{m.path.rstrip('/')}/{name}"
        return None

    def _file_named(self, name: str) -> str | None:
        for m in self.mounts:
            if name in m.files:
                return m.files[name]
        return None

    def service(self, name: str) -> dict[str, Any]:
        for s in self.runbook["services"]:
            if s["name"] == name:
                return s
        raise VcplError(f"venues/{self.venue}/runbook.yaml: no service {name!r}")

    def state_is_persistent(self, path: str) -> bool:
        """Whether a path (e.g. FileStorePath) lives on a volume that survives a pod restart."""
        best: Mount | None = None
        for m in self.mounts:
            if path == m.path or path.startswith(m.path.rstrip("/") + "/"):
                if best is None or len(m.path) > len(best.path):
                    best = m
        return bool(best and best.persistent)

    def finding(self, service: str, check: str, field_: str, ok: bool, detail: str) -> Finding:
        return Finding(self.venue, self.env, service, check, field_, ok, detail)

    # --- materialise ----------------------------------------------------------------------------
    def write_mounts(self, root: Path) -> None:
        """Write every mount under root (root is / inside the sandbox)."""
        for m in self.mounts:
            target = root / m.path.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            for name, content in m.files.items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_text(content, encoding="utf-8")


def credential_value(venue: str, env: str, key: str) -> str:
    """A stand-in for a secret value that client and simulator agree on; never a real secret."""
    return f"sim-{venue}-{env}-{key}"


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def _gateway_statefulset(objects: list[dict[str, Any]], where: str) -> dict[str, Any]:
    for sts in _by_kind(objects, "StatefulSet"):
        names = [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]]
        if GATEWAY_CONTAINER in names:
            return sts
    raise VcplError(f"{where}: no StatefulSet with a container named {GATEWAY_CONTAINER!r}")


def _secret_keys(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Secret name -> keys, from the ExternalSecrets that create them."""
    keys: dict[str, list[str]] = {}
    for es in _by_kind(objects, "ExternalSecret"):
        target = es["spec"].get("target", {}).get("name") or es["metadata"]["name"]
        keys[target] = [d["secretKey"] for d in es["spec"].get("data", [])]
        keys[target] += list(es["spec"].get("target", {}).get("template", {}).get("data", {}))
    return keys


def _mounts(objects: list[dict[str, Any]], venue: str, env: str, where: str) -> tuple[list[Mount], dict[str, str]]:
    sts = _gateway_statefulset(objects, where)
    pod = sts["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])}
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in _by_kind(objects, "ConfigMap")}
    secrets = _secret_keys(objects)
    credentials: dict[str, str] = {}
    mounts = []
    container = next(c for c in pod["containers"] if c["name"] == GATEWAY_CONTAINER)
    for vm in container.get("volumeMounts", []):
        name = vm["name"]
        writable = not vm.get("readOnly", False)
        if name in claims:
            mounts.append(Mount(vm["mountPath"], {}, True, writable))
            continue
        vol = volumes.get(name)
        if vol is None:
            raise VcplError(f"{where}: StatefulSet {sts['metadata']['name']} mounts {name!r}, which is neither a volume nor a claim")
        files: dict[str, str] = {}
        if "configMap" in vol:
            data = config_maps.get(vol["configMap"]["name"], {})
            items = vol["configMap"].get("items")
            files = {i["path"]: data[i["key"]] for i in items if i["key"] in data} if items else dict(data)
        elif "secret" in vol:
            for key in secrets.get(vol["secret"]["secretName"], []):
                files[key] = credentials[key] = credential_value(venue, env, key)
        if "subPath" in vm:
            files = {Path(vm["mountPath"]).name: files[vm["subPath"]]} if vm["subPath"] in files else {}
            mounts.append(Mount(str(Path(vm["mountPath"]).parent), files, False, writable))
            continue
        mounts.append(Mount(vm["mountPath"], files, False, writable))
    return mounts, credentials


def _rendered_hosts(gateway: dict[str, Any], channels: dict[str, Any] | None, session_cfg: str | None) -> list[str]:
    hosts: list[str] = []
    for s in gateway.get("services", []):
        hosts += [e["host"] for e in s.get("endpoints", [])]
    for r in (channels or {}).get("recovery", []):
        if "host" in r:
            hosts.append(r["host"])
    for line in (session_cfg or "").splitlines():
        key, _, value = line.partition("=")
        if key.startswith("SocketConnectHost"):
            hosts.append(value.strip())
    return list(dict.fromkeys(hosts))


def sandbox_address(venue: str, env: str, host: str) -> str:
    """The address a rendered host gets inside the sandbox: itself if it is an IP, else a stable
    address in 10.0.0.0/8 (the sandbox has its own network namespace, so nothing real is shadowed)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        digest = hashlib.sha256(f"{venue}/{env}/{host}".encode()).digest()
        return f"10.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


def load(venue: str, env: str, overlay: Path | None = None) -> Site:
    """The Site of overlays/<env>/<venue>, or of another kustomization that renders that venue and
    environment (a test's deliberately broken copy)."""
    where = str(overlay) if overlay else f"overlays/{env}/{venue}"
    text = render.build_dir(overlay) if overlay else render.build(env, venue)
    objects = [o for o in yaml.safe_load_all(text) if o]
    mounts, credentials = _mounts(objects, venue, env, where)
    site = Site(venue, env, runbook.load_venue(venue), objects, mounts, credentials)
    pod = _gateway_statefulset(objects, where)["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == GATEWAY_CONTAINER)
    site.container_env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    hosts = _rendered_hosts(site.gateway, site.channels, site.session_cfg)
    site.hosts = {h: sandbox_address(venue, env, h) for h in hosts}
    for i, nic in enumerate(sorted({line[k]["interface"] for line in (site.channels or {}).get("channels", []) for k in ("a", "b") if k in line})):
        # One /24 per NIC (198.18.0.0/15 is reserved for such test networks).
        site.interfaces[nic] = f"198.18.{i}.1"
    return site
