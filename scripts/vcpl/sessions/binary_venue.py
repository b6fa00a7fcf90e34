"""The venue side of a binary order-entry session, derived from the run book only.

One `Venue` per run-book service: a listener on every endpoint the run book gives for the
environment (at the sandbox address of its host), each endpoint active, standby (answers a login
with a reject: one active endpoint at a time) or down (accepts TCP and closes at once, so the
attempt is still counted). It checks the login's identity (session values and credential
stand-ins of the run book's auth.secretKeys), the heartbeat bounds, the sequence number the login
claims (continue, reset or jump on the backup as services[].failoverSequence says), and records
every attempt and every client message with its time for the checks in vcpl.sessions.binary.

Times in the run book are divided by `scale` (a clock shared with the reference client).
"""
from __future__ import annotations

import ipaddress
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vcpl.sessions.binary_codec import Closed, Codec, Conn
from vcpl.sessions.site import Site, credential_value, sandbox_address

APP_BURST = 3          # sequenced messages the venue sends after each logon


@dataclass
class Endpoint:
    role: str
    host: str
    port: int
    address: str
    assigns: dict[str, Any] | None = None
    state: str = "standby"                    # active | standby | down
    gateway: tuple[str, int] | None = None    # trading gateway a lookup endpoint assigns
    sockets: list[socket.socket] = field(default_factory=list)


@dataclass
class LogonRecord:
    at: float
    role: str
    accepted: bool
    reason: str = ""
    claim: int | None = None
    expected_claim: int | None = None
    uuid: int | None = None
    new_session: bool = False
    hb_ms: int | None = None
    identity_wrong: list[str] = field(default_factory=list)


@dataclass
class SessionRecord:
    role: str
    started: float
    rx: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    ended: float | None = None
    ended_by: str = ""           # client | venue
    silent: bool = False
    kill: bool = False
    test_request: int | None = None


def ensure_address(address: str) -> None:
    """Put an address on the sandbox loopback if nothing has (a run-book host the overlay does not render)."""
    if address.startswith("127."):
        return
    probe = socket.socket()
    try:
        probe.bind((address, 0))
    except OSError:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True)
    finally:
        probe.close()


class Venue:
    def __init__(self, site: Site, service: dict[str, Any], codec: Codec, scale: float):
        self.site, self.service, self.codec, self.scale = site, service, codec, scale
        self.name = service["name"]
        env = service["environments"][site.env]
        self.session_values = dict(env.get("session", {}))
        creds = {k: credential_value(site.venue, site.env, f"{self.name}-{k}") for k in service.get("auth", {}).get("secretKeys", [])}
        self.expected = codec.identity(self.session_values, creds)
        hb = service.get("heartbeat")
        self.hb_value: float | None = None      # run-book interval in its unit
        self.hb_seconds: float | None = None
        if hb:
            self.hb_value = float(env.get("heartbeat", hb.get("default")))
            self.hb_unit = hb.get("unit", "s")
            self.hb_min, self.hb_max = hb.get("min"), hb.get("max")
            self.hb_seconds = self.hb_value / (1000.0 if self.hb_unit == "ms" else 1.0) if self.hb_value else None
        self.failover_sequence = service.get("failoverSequence") or {}
        self.throttle = service.get("throttle") or {}
        self.endpoints: list[Endpoint] = []
        for role in ("primary", "backup", "dr"):
            e = env.get("endpoints", {}).get(role)
            if e:
                address = site.hosts.get(e["host"]) or sandbox_address(site.venue, site.env, e["host"])
                self.endpoints.append(Endpoint(role, e["host"], int(e["port"]), address, e.get("assigns")))
        self.endpoints[0].state = "active"
        # Sequence state of the venue: what it sends next, what it expects the client to send next,
        # and what the next login should claim.
        self.server_next = 1
        self.client_next = 1
        self.jump_claim: int | None = None
        self.uuid: int | None = None
        self.app_log: list[int] = []
        self.attempts: list[tuple[float, str, str]] = []     # (time, role, outcome)
        self.logons: list[LogonRecord] = []
        self.sessions: list[SessionRecord] = []
        self.current: SessionRecord | None = None
        self.lock = threading.Lock()
        self.stopping = False
        self.threads: list[threading.Thread] = []

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        for ep in self.endpoints:
            ensure_address(ep.address)
            self._listen(ep, ep.address, ep.port, lookup=bool(ep.assigns and self.codec.layer == "ocg-session"))
            if ep.assigns and self.codec.layer == "ocg-session":
                net = ipaddress.ip_network(ep.assigns["cidrs"][0], strict=False)
                offset = {"primary": 1, "backup": 2, "dr": 3}[ep.role]
                ep.gateway = (str(net.network_address + offset), int(ep.assigns["ports"][0]["port"]))
                ensure_address(ep.gateway[0])
                self._listen(ep, ep.gateway[0], ep.gateway[1], lookup=False, counted=False)

    def _listen(self, ep: Endpoint, address: str, port: int, lookup: bool, counted: bool = True) -> None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((address, port))
        srv.listen(64)
        ep.sockets.append(srv)
        t = threading.Thread(target=self._accept_loop, args=(ep, srv, lookup, counted), daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self) -> None:
        self.stopping = True
        self.kill_session()
        for ep in self.endpoints:
            for s in ep.sockets:
                try:
                    s.close()
                except OSError:
                    pass

    def _accept_loop(self, ep: Endpoint, srv: socket.socket, lookup: bool, counted: bool) -> None:
        while not self.stopping:
            try:
                sock, _peer = srv.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(ep, Conn(sock), lookup, counted), daemon=True).start()

    # --- control by the rehearsal --------------------------------------------------------------------
    def set_states(self, states: dict[str, str]) -> None:
        with self.lock:
            for ep in self.endpoints:
                if ep.role in states:
                    ep.state = states[ep.role]

    def state_of(self, role: str) -> str:
        return next(ep.state for ep in self.endpoints if ep.role == role)

    def move_to(self, new_role: str, old_role: str) -> str:
        """The active endpoint changes: apply the run book's failoverSequence; returns the policy."""
        policy = "continue" if new_role == old_role or new_role == "primary" else self.failover_sequence.get(new_role, "continue")
        with self.lock:
            if policy == "reset":
                self.server_next = self.client_next = 1
            elif policy == "jump":
                # The client should keep claiming where it was and see the gap on the first message.
                self.jump_claim = self.server_next
                self.server_next += int(self.failover_sequence.get("jumpBy", 1))
        return policy

    def kill_session(self) -> None:
        cur = self.current
        if cur:
            cur.kill = True

    def silence(self, on: bool) -> None:
        cur = self.current
        if cur:
            cur.silent = on

    def send_test_request(self, test_id: int) -> None:
        cur = self.current
        if cur:
            cur.test_request = test_id

    @property
    def hb_interval(self) -> float | None:
        return self.hb_seconds / self.scale if self.hb_seconds else None

    # --- one connection -----------------------------------------------------------------------------
    def _serve(self, ep: Endpoint, conn: Conn, lookup: bool, counted: bool) -> None:
        try:
            state = ep.state
            if counted:
                with self.lock:
                    self.attempts.append((time.monotonic(), ep.role, state))
            if state == "down":
                return
            if lookup:
                kind, f = self.codec.read(conn, "client", 3.0)
                if kind == "lookup" and ep.gateway:
                    conn.send(self.codec.encode("venue", "lookup-response", {"address": ep.gateway[0], "port": ep.gateway[1], "comp_id": f.get("comp_id", "")}))
                return
            self._session(ep, conn)
        except (Closed, TimeoutError, OSError, ValueError, struct.error):
            pass
        finally:
            conn.close()

    def _reject(self, conn: Conn, ep: Endpoint, reason: str, step: str, code: str = "A", **extra: Any) -> None:
        self.logons.append(LogonRecord(time.monotonic(), ep.role, False, reason, **extra))
        f = {"reason": reason, "step": step, "code": code, "comp_id": self.expected.get("comp_id", ""), "session_id": self.expected.get("session_id", 0)}
        conn.send(self.codec.encode("venue", "reject", f))

    def _session(self, ep: Endpoint, conn: Conn) -> None:
        codec = self.codec
        kind, f = codec.read(conn, "client", 3.0)
        negotiated_uuid = None
        if codec.negotiates:
            if kind != "negotiate":
                return self._reject(conn, ep, f"expected Negotiate, got {kind}", "negotiate")
            f["kind"] = "negotiate"
            wrong = codec.verify(f, self.expected)
            if wrong:
                return self._reject(conn, ep, "Negotiate: " + "; ".join(wrong), "negotiate", identity_wrong=wrong)
            if ep.state != "active":
                return self._reject(conn, ep, "not the active endpoint", "negotiate", code="S")
            negotiated_uuid = f["uuid"]
            conn.send(codec.encode("venue", "negotiated", {"uuid": f["uuid"], "ts": f.get("ts", 0), "session_id": f.get("session_id", 0),
                                                           "firm": f.get("firm", 0), "previous_seq": max(self.server_next - 1, 0),
                                                           "previous_uuid": self.uuid or 0}))
            kind, f = codec.read(conn, "client", 3.0)
        if kind != "login":
            return self._reject(conn, ep, f"expected a login, got {kind}", "login")
        f["kind"] = "login"
        wrong = codec.verify(f, self.expected)
        if wrong:
            return self._reject(conn, ep, "; ".join(wrong), "login", identity_wrong=wrong)
        if ep.state != "active":
            return self._reject(conn, ep, "not the active endpoint", "login", code="S")
        hb_ms = f.get("hb_ms")
        if hb_ms is not None and self.hb_value is not None:
            lo, hi = self.hb_min if self.hb_min is not None else 0, self.hb_max
            if hb_ms < lo or (hi is not None and hb_ms > hi):
                return self._reject(conn, ep, f"KeepAliveInterval {hb_ms} ms outside the run book's bounds [{lo}, {hi}] ms", "login", hb_ms=hb_ms)
        with self.lock:
            uuid = f.get("uuid", negotiated_uuid)
            new_session = bool(codec.negotiates and self.uuid is not None and uuid != self.uuid)
            expected_claim = self.client_next if codec.claim == "outbound" else self.server_next
            if self.jump_claim is not None and codec.claim == "inbound":
                expected_claim, self.jump_claim = self.jump_claim, None
            if new_session:
                # A new UUID / sessionVerID is a new session: both flows start at 1.
                self.server_next = self.client_next = 1
            if codec.negotiates:
                self.uuid = uuid
            claim = int(f.get("claim", 0))
            self.logons.append(LogonRecord(time.monotonic(), ep.role, True, "", claim, expected_claim, uuid, new_session, hb_ms))
            if codec.claim == "outbound":
                self.client_next = claim if claim >= 1 else self.client_next
                accept_next = self.server_next
                replay: list[int] = []
            else:
                start = claim if 1 <= claim <= self.server_next else self.server_next
                accept_next = start
                replay = list(range(start, self.server_next))
            record = SessionRecord(ep.role, time.monotonic())
            self.sessions.append(record)
            self.current = record
        base = {"uuid": uuid or 0, "session_id": self.expected.get("session_id", 0), "comp_id": self.expected.get("comp_id", "")}
        accept = dict(base, next_seq=accept_next, hb_ms=int(hb_ms or 0), exchange=str(self.session_values.get("exchangeId", "")),
                      last_in=self.client_next - 1, session="1")
        if self.throttle.get("announcedAtLogon"):
            accept["throttle"] = int(self.throttle["messages"])
        conn.send(codec.encode("venue", "accept", accept))
        for seq in replay:
            conn.send(codec.encode("venue", "app", dict(base, seq=seq)))
        for _ in range(APP_BURST):
            with self.lock:
                seq = self.server_next
                self.server_next += 1
            conn.send(codec.encode("venue", "app", dict(base, seq=seq)))
        self._steady(conn, record, base)

    def _steady(self, conn: Conn, record: SessionRecord, base: dict[str, Any]) -> None:
        codec = self.codec
        interval = self.hb_interval
        last_tx = last_rx = time.monotonic()
        try:
            while not self.stopping and not record.kill:
                now = time.monotonic()
                if record.test_request is not None:
                    conn.send(codec.encode("venue", "test-request", dict(base, test_id=record.test_request, seq=self.server_next)))
                    record.test_request = None
                    last_tx = now
                if interval and not record.silent and now - last_tx >= interval:
                    conn.send(codec.encode("venue", "heartbeat", dict(base, next_seq=self.server_next, seq=self.server_next)))
                    last_tx = now
                if interval and now - last_rx > 3 * interval:
                    record.ended_by = "venue: no message from the client for 3 heartbeat intervals"
                    conn.send(codec.encode("venue", "logout", dict(base, reason="heartbeat timeout")))
                    return
                try:
                    kind, f = codec.read(conn, "client", 0.02)
                except TimeoutError:
                    continue
                last_rx = time.monotonic()
                record.rx.append((last_rx, kind, f))
                if kind == "app" and codec.claim == "outbound":
                    with self.lock:
                        self.client_next = max(self.client_next, int(f.get("seq") or 0) + 1)
                if kind == "logout":
                    record.ended_by = "client logout"
                    return
        except Closed:
            record.ended_by = record.ended_by or "client closed the connection"
        finally:
            record.ended = time.monotonic()
            if record.kill and not record.ended_by:
                record.ended_by = "venue killed the session"
            if self.current is record:
                self.current = None
