"""The reference client: the real QuickFIX engine as initiator with exactly the rendered
session.cfg at its mount path, credentials read from /var/run/secrets/venue/ as the gateway reads
them, and, where session.cfg points at a local TLS sidecar, a small forwarder that plays stunnel
from the rendered stunnel.conf. It reads only rendered files (session.cfg, gateway.json,
stunnel.conf, the secret files), never the run book.
"""
from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import quickfix as fix  # type: ignore[import-untyped]

from vcpl.model.sessions import parse_quickfix
from vcpl.sessions.fix_sim import LOGON_FIELDS, SOH, mono, parse, relay

Emit = Callable[[str, str, float, str], None]  # (set|inc, metric, value, service)


def cfg_values(text: str) -> list[dict[str, str]]:
    """[DEFAULT] merged into each [SESSION] of a QuickFIX settings file (the gate's parser)."""
    return [session["settings"] for session in parse_quickfix(text)[1]]


def stunnel_services(objects: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    """Local accept port -> the stunnel.conf section (connect, sni, sslVersionMin...)."""
    found: dict[int, dict[str, str]] = {}
    for obj in objects:
        if obj.get("kind") != "ConfigMap" or "stunnel.conf" not in obj.get("data", {}):
            continue
        section: dict[str, str] = {}
        for line in obj["data"]["stunnel.conf"].splitlines():
            line = line.strip()
            if line.startswith("["):
                section = {"name": line.strip("[]")}
            elif "=" in line and "name" in section:
                key, _, value = line.partition("=")
                section[key.strip()] = value.strip()
                if key.strip() == "accept":
                    found[int(value.strip().rpartition(":")[2])] = section
    return found


class Sidecar:
    """stunnel in client mode, as the pod runs it: each local connection opens one TLS connection
    to `connect`, with SNI and the minimum version from stunnel.conf. Certificate validation
    (verifyChain/checkHost against CAfile) is NOT rehearsed: the simulator's certificate is a
    throwaway self-signed one."""

    def __init__(self, section: dict[str, str]):
        self.section = section
        host, _, port = section["accept"].rpartition(":")
        self.connect_host, _, connect_port = section["connect"].rpartition(":")
        self.connect_port = int(connect_port)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        if section.get("sslVersionMin") == "TLSv1.3":
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        else:
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, int(port)))
        self._sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            raw = socket.create_connection((self.connect_host, self.connect_port), timeout=5)
            remote = self.ctx.wrap_socket(raw, server_hostname=self.section.get("sni") or None)
            remote.settimeout(None)
        except (OSError, ssl.SSLError) as exc:
            SIDECAR_FAILURES.append((time.time(), f"[{self.section.get('name')}] {self.section['connect']}: {exc!r}"))
            conn.close()
            return
        relay(conn, remote)


class GatewayApp(fix.Application):
    """What the gateway does in the engine's callbacks: fill the Logon's credentials from the
    secret files and record the alert contract's session metrics when they change."""

    def __init__(self, services: dict[tuple[str, str], dict[str, Any]], emit: Emit):
        super().__init__()
        self.services = services      # (SenderCompID, TargetCompID) -> gateway.json service
        self.sub_ids: dict[tuple[str, str], dict[str, str]] = {}
        self.emit = emit
        self.logged_on = False
        self.logon_times: list[float] = []
        self.rejects: list[str] = []
        self.logout_wall: list[float] = []   # wall-clock (possibly faked) time of each logout
        self.errors: list[str] = []

    def _service(self, sid: Any) -> dict[str, Any]:
        return self.services.get((sid.getSenderCompID().getValue(), sid.getTargetCompID().getValue()), {"name": "?"})

    def onCreate(self, sessionID: Any) -> None:
        self.emit("set", "vcpl_session_logged_on", 0, self._service(sessionID)["name"])

    def onLogon(self, sessionID: Any) -> None:
        self.logged_on = True
        self.logon_times.append(mono())
        self.emit("set", "vcpl_session_logged_on", 1, self._service(sessionID)["name"])

    def onLogout(self, sessionID: Any) -> None:
        self.logout_wall.append(time.time())
        if self.logged_on:
            self.emit("set", "vcpl_session_logged_on", 0, self._service(sessionID)["name"])
        self.logged_on = False

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        try:
            self._sub_ids(message, sessionID)
            kind = message.getHeader().getField(35)
            name = self._service(sessionID)["name"]
            if kind == "A":
                self._credentials(message, self._service(sessionID))
            elif kind == "1":   # the engine saw no message for HeartBtInt + 20 %: a heartbeat timeout
                self.emit("inc", "vcpl_session_heartbeat_timeouts_total", 1, name)
            elif kind == "2":   # the engine saw a MsgSeqNum gap and asks for a resend
                self.emit("inc", "vcpl_session_sequence_gaps_total", 1, name)
                self.emit("inc", "vcpl_session_resend_requests_total", 1, name)
        except Exception as exc:  # an exception must not escape into the engine's thread
            self.errors.append(f"toAdmin: {exc!r}")

    def _sub_ids(self, message: Any, sessionID: Any) -> None:
        """QuickFIX C++ does not read SenderSubID/TargetSubID from its settings (its SessionID has
        no sub IDs), so the gateway stamps them from session.cfg on every outgoing message."""
        key = (sessionID.getSenderCompID().getValue(), sessionID.getTargetCompID().getValue())
        for tag, name in ((50, "SenderSubID"), (57, "TargetSubID")):
            value = self.sub_ids.get(key, {}).get(name)
            if value and not message.getHeader().isSetField(tag):
                message.getHeader().setField(fix.StringField(tag, value))

    def _credentials(self, message: Any, service: dict[str, Any]) -> None:
        files = {Path(p).name.removeprefix(f"{service['name']}-"): Path(p) for p in service.get("credentials", [])}
        values = {k: p.read_text(encoding="utf-8").strip() for k, p in files.items() if p.exists()}
        for key, value in values.items():
            carrier = LOGON_FIELDS.get(key)
            if carrier == "signature":
                raw = parse(message.toString())
                prehash = SOH.join([message.getHeader().getField(52), "A", message.getHeader().getField(34),
                                    raw.get(49, ""), raw.get(56, ""), values.get("passphrase", "")])
                signature = base64.b64encode(hmac.new(value.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
                message.setField(fix.IntField(95, len(signature)))
                message.setField(fix.StringField(96, signature))
            elif carrier == 96:
                message.setField(fix.IntField(95, len(value)))
                message.setField(fix.StringField(96, value))
            elif isinstance(carrier, int):
                message.setField(fix.StringField(carrier, value))

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        try:
            f = parse(message.toString())
            name = self._service(sessionID)["name"]
            if f.get(35) == "5" and not self.logged_on:   # Logout answering our Logon: rejected
                self.rejects.append(f.get(58, ""))
                self.emit("inc", "vcpl_session_logon_rejects_total", 1, name)
            elif f.get(35) == "2":
                self.emit("inc", "vcpl_session_resend_requests_total", 1, name)
        except Exception as exc:
            self.errors.append(f"fromAdmin: {exc!r}")

    def toApp(self, message: Any, sessionID: Any) -> None:
        self._sub_ids(message, sessionID)

    def fromApp(self, message: Any, sessionID: Any) -> None: ...


class Client:
    """One gateway process: engine + sidecars. Stop it and build another for a pod restart."""

    def __init__(self, cfg_path: str, gateway: dict[str, Any], objects: list[dict[str, Any]], emit: Emit):
        text = Path(cfg_path).read_text(encoding="utf-8")
        self.sessions = cfg_values(text)
        services = {(s["session"]["senderCompID"], s["session"]["targetCompID"]): s for s in gateway.get("services", []) if "senderCompID" in s.get("session", {})}
        self.app = GatewayApp(services, emit)
        self.app.sub_ids = {(s.get("SenderCompID", ""), s.get("TargetCompID", "")): s for s in self.sessions}
        self.settings = fix.SessionSettings(cfg_path)   # raises fix.ConfigError on a broken file
        # The engine keeps references to the factories: they must live as long as it does.
        self.store_factory = fix.FileStoreFactory(self.settings)
        self.log_factory = fix.FileLogFactory(self.settings)
        self.initiator = fix.SocketInitiator(self.app, self.store_factory, self.settings, self.log_factory)

    def start(self) -> None:
        self.initiator.start()

    def stop(self) -> None:
        """Log out and destroy the engine: its sessions close the store and log files (a pod
        restart unmounts the volume they are on)."""
        self.initiator.stop(True)
        del self.initiator
        gc.collect()


def probe(cfg_path: str) -> None:
    """Load the settings into an engine that writes nothing (memory store, silent log) and throw
    it away; raises fix.ConfigError as the real one would. The real one must not be the first to
    try: a constructor that throws leaks its open global log files, which would pin the volume."""
    settings = fix.SessionSettings(cfg_path)
    store, log = fix.MemoryStoreFactory(), fix.ScreenLogFactory(False, False, False)
    app = GatewayApp({}, lambda *a: None)
    engine = fix.SocketInitiator(app, store, settings, log)
    del engine, app


_SIDECARS: dict[int, Sidecar] = {}
# (wall-clock time, what failed): a gateway connection the sidecar could not carry to the venue.
SIDECAR_FAILURES: list[tuple[float, str]] = []


def start_sidecars(sessions: list[dict[str, str]], objects: list[dict[str, Any]]) -> list[str]:
    """Start the stunnel stand-in for every session.cfg host that is a local sidecar port; the
    pod's sidecar outlives gateway restarts, so these do too. Returns problems found."""
    problems = []
    conf = stunnel_services(objects)
    for s in sessions:
        index = 0
        while (key := "SocketConnectHost" + (str(index) if index else "")) in s:
            port = int(s.get("SocketConnectPort" + (str(index) if index else ""), "0"))
            if s[key] in ("127.0.0.1", "localhost") and port not in _SIDECARS:
                if port in conf:
                    _SIDECARS[port] = Sidecar(conf[port])
                else:
                    problems.append(f"session.cfg {key}={s[key]}:{port} points at a local port no stunnel.conf section accepts on")
            index += 1
    return problems
