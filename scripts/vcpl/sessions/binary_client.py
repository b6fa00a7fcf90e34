"""The reference client of a binary order-entry session: the gateway side.

It reads only what the pod reads: the rendered gateway.json at its mount path and the credential
files it names under /var/run/secrets/venue. From gateway.json it takes the service's endpoints in
rendered order, its heartbeat (interval and unit), session values, failoverSequence and the
reconnect plan (failover.reconnect). Its sequence state (next inbound and outbound numbers, the
FIXP UUID / B3 sessionVerID, the endpoint role last logged on to) lives in
/var/lib/venue-gateway/<service>/session.json, written after every change, so a restarted client
resumes when that directory survives the restart.

It records the metrics of the alert contract as they change (vcpl.sessions.metrics.Recorder).
Times are divided by `scale`, the clock it shares with the simulator.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from vcpl.sessions import binary_plan
from vcpl.sessions.binary_codec import Closed, Codec, Conn
from vcpl.sessions.metrics import Recorder

STATE_DIR = "/var/lib/venue-gateway"   # the gateway container's --state-dir
APP_BURST = 2                          # messages the client sends after each logon


class Client:
    def __init__(self, gateway_json: str, name: str, codec: Codec, scale: float, metrics: Recorder):
        self.name, self.codec, self.scale, self.metrics = name, codec, scale, metrics
        config = json.loads(Path(gateway_json).read_text(encoding="utf-8"))
        self.reconnect = config.get("failover", {}).get("reconnect", {})
        svc = next(s for s in config.get("services", []) if s.get("name") == name)
        self.endpoints: list[dict[str, Any]] = svc.get("endpoints", [])
        self.session_values: dict[str, Any] = svc.get("session", {})
        self.failover_sequence: dict[str, Any] = svc.get("failoverSequence", {})
        hb = svc.get("heartbeat") or {}
        interval = hb.get("interval", hb.get("default"))
        self.hb_value = interval
        self.hb_seconds = None if interval in (None, 0) else float(interval) / (1000.0 if hb.get("unit", "s") == "ms" else 1.0)
        creds: dict[str, str] = {}
        for path in svc.get("credentials", []):
            key = Path(path).name
            key = key[len(name) + 1:] if key.startswith(name + "-") else key
            try:
                creds[key] = Path(path).read_text(encoding="utf-8").strip()
            except OSError:
                creds[key] = ""
        self.identity = codec.identity(self.session_values, creds)
        self.state_path = Path(STATE_DIR) / name / "session.json"
        self.state = self._load()
        self.labels = {"service": name}
        self.status = "idle"            # idle | connecting | logged-on | call-venue | stopped
        self.opening = False            # logged on, its first messages not all sent yet
        self.events: list[tuple[float, str]] = []
        self.stopping = False
        self.conn: Conn | None = None
        self.thread: threading.Thread | None = None

    # --- state on disk ---------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"next_in": 1, "next_out": 1, "uuid": None, "role": None}

    def saved(self) -> dict[str, Any]:
        """The state file as a restarted pod would read it."""
        return self._load()

    def _save(self) -> None:
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as exc:
            self.events.append((time.monotonic(), f"cannot write {self.state_path}: {exc}"))

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def kill(self) -> None:
        """Stop as a killed pod does: the connection drops, nothing is sent."""
        self.stopping = True
        if self.conn:
            self.conn.close()
        if self.thread:
            self.thread.join(timeout=5)
        self.status = "stopped"

    def _sleep(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.stopping:
                return False
            time.sleep(min(0.01, max(end - time.monotonic(), 0)))
        return not self.stopping

    def _run(self) -> None:
        roles = [e.get("role", f"endpoint{i}") for i, e in enumerate(self.endpoints)]
        while not self.stopping:
            plan, ends = binary_plan.attempts(self.reconnect, roles, limit=10_000)
            if not plan:
                self.status = "call-venue"
                return
            logged_on = False
            for attempt in plan:
                if not self._sleep(attempt.wait / self.scale):
                    return
                self.status = "connecting"
                if self._attempt(attempt.index):
                    logged_on = True
                    break
            if self.stopping:
                return
            if not logged_on:
                # Every attempt of the plan failed and it ends with call-venue.
                self.status = "call-venue"
                self.events.append((time.monotonic(), "reconnect plan exhausted: call the venue"))
                return

    # --- one attempt and one session ------------------------------------------------------------
    def _connect(self, host: str, port: int) -> Conn:
        sock = socket.create_connection((host, port), timeout=2.0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Conn(sock)

    def _attempt(self, index: int) -> bool:
        ep = self.endpoints[index]
        role = ep.get("role", f"endpoint{index}")
        try:
            host, port = ep["host"], int(ep["port"])
            if ep.get("assigns"):
                host, port = self._lookup(ep)
            conn = self._connect(host, port)
        except (OSError, Closed, TimeoutError, ValueError, struct.error) as exc:
            self.events.append((time.monotonic(), f"connect {role} failed: {exc}"))
            return False
        self.conn = conn
        try:
            if not self._logon(conn, role):
                return False
            self._steady(conn)
            return True
        except (Closed, TimeoutError, OSError, ValueError, struct.error) as exc:
            self.events.append((time.monotonic(), f"session on {role} ended: {exc}"))
            return self.status == "logged-on-ended"
        finally:
            self.opening = False
            if self.status in ("logged-on", "logged-on-ended"):
                self.metrics.set("vcpl_session_logged_on", 0, **self.labels)
                self.status = "connecting"
            conn.close()

    def _lookup(self, ep: dict[str, Any]) -> tuple[str, int]:
        """A connection gateway (endpoint with `assigns`): ask it for the trading gateway, and refuse
        an assignment outside the rendered ranges (egress allows only those)."""
        conn = self._connect(ep["host"], int(ep["port"]))
        try:
            conn.send(self.codec.encode("client", "lookup", dict(self.identity)))
            kind, f = self.codec.read(conn, "venue", 2.0)
        finally:
            conn.close()
        if kind != "lookup-response":
            raise Closed(f"lookup answered {kind}")
        address, port = f["address"], int(f["port"])
        assigns = ep["assigns"]
        in_cidr = any(ipaddress.ip_address(address) in ipaddress.ip_network(c, strict=False) for c in assigns.get("cidrs", []))
        in_port = any(p["port"] <= port <= p.get("endPort", p["port"]) for p in assigns.get("ports", []))
        if not (in_cidr and in_port):
            raise Closed(f"lookup assigned {address}:{port}, outside the rendered assigns")
        return address, port

    def _claims(self, role: str) -> None:
        """Apply the rendered failoverSequence when the endpoint role changes."""
        last = self.state.get("role")
        if last and role != last and role in ("backup", "dr"):
            if self.failover_sequence.get(role) == "reset" and not self.state.get("reset_for") == role:
                self.state["next_in"] = self.state["next_out"] = 1
                self.state["reset_for"] = role
        elif role == last:
            self.state.pop("reset_for", None)
        if self.codec.negotiates and not self.state.get("uuid"):
            self.state["uuid"] = time.time_ns() // 1000      # CME recommends a timestamp UUID
        self._save()

    def _logon(self, conn: Conn, role: str) -> bool:
        codec = self.codec
        self._claims(role)
        claim = self.state["next_out"] if codec.claim == "outbound" else self.state["next_in"]
        hb_ms = int(round(self.hb_seconds * 1000)) if self.hb_seconds else 0
        f = dict(self.identity, claim=claim, hb_ms=hb_ms, uuid=self.state.get("uuid") or 0, ts=time.time_ns())
        if codec.negotiates:
            conn.send(codec.encode("client", "negotiate", f))
            kind, r = codec.read(conn, "venue", 3.0)
            if kind != "negotiated":
                self._rejected(role, r.get("reason", kind))
                return False
        conn.send(codec.encode("client", "login", f))
        kind, r = codec.read(conn, "venue", 3.0)
        if kind != "accept":
            self._rejected(role, r.get("reason", kind))
            return False
        self.status = "logged-on"
        self.opening = True              # until the first messages are sent (see quiesce)
        self.state["role"] = role        # only a logon moves the session to this endpoint
        self.metrics.set("vcpl_session_logged_on", 1, **self.labels)
        self.events.append((time.monotonic(), f"logged on to {role} claiming {claim}"))
        if "throttle" in r:
            self.metrics.set("vcpl_session_throttle_limit_messages", float(r["throttle"]), **self.labels)
        nxt = int(r.get("next_seq") or 0)
        if codec.implicit_seq and nxt:
            if nxt > self.state["next_in"]:
                self._gap(nxt - self.state["next_in"])
            self.state["next_in"] = nxt
        elif codec.claim == "outbound" and nxt > self.state["next_in"]:
            # FIXP: the venue's next number is beyond ours; a RetransmitRequest would follow.
            self._gap(nxt - self.state["next_in"])
            self.state["next_in"] = nxt
        self._save()
        return True

    def _rejected(self, role: str, reason: str) -> None:
        self.metrics.inc("vcpl_session_logon_rejects_total", 1, service=self.name)
        self.events.append((time.monotonic(), f"logon to {role} rejected: {reason}"))

    def _gap(self, n: int) -> None:
        self.metrics.inc("vcpl_session_sequence_gaps_total", n, service=self.name)
        self.events.append((time.monotonic(), f"sequence gap of {n}"))

    def _steady(self, conn: Conn) -> None:
        codec = self.codec
        base = {k: v for k, v in self.identity.items() if not k.startswith("_")}
        base["uuid"] = self.state.get("uuid") or 0
        interval = self.hb_seconds / self.scale if self.hb_seconds else None
        # Silence before the client gives up on the venue: FIXP warns (KeepAliveIntervalLapsed) after
        # one interval and terminates after two; the other layers drop after three.
        limit = (2 if codec.negotiates else 3) * interval if interval else None
        last_tx = last_rx = time.monotonic()
        lapsed_sent = False
        try:
            # Inside the try: a session lost during its first messages was still logged on, so
            # the reconnect plan starts again from its first step, not from its next attempt.
            for _ in range(APP_BURST):
                seq = self.state["next_out"]
                conn.send(codec.encode("client", "app", dict(base, seq=seq)))
                self.state["next_out"] = seq + 1
            self._save()
            self.opening = False
            while not self.stopping:
                now = time.monotonic()
                if interval and now - last_tx >= interval:
                    conn.send(codec.encode("client", "heartbeat", dict(base, next_seq=self.state["next_out"], seq=self.state["next_out"])))
                    last_tx = now
                if interval and codec.negotiates and not lapsed_sent and now - last_rx > interval * 1.5:
                    conn.send(codec.encode("client", "heartbeat", dict(base, next_seq=self.state["next_out"], lapsed=True)))
                    lapsed_sent = True
                if limit and now - last_rx > limit:
                    self.metrics.inc("vcpl_session_heartbeat_timeouts_total", 1, service=self.name)
                    self.events.append((now, "heartbeat timeout: nothing from the venue"))
                    try:
                        conn.send(codec.encode("client", "logout", dict(base, reason="keepalive lapsed", code=0)))
                    except Closed:
                        pass
                    self.status = "logged-on-ended"
                    return
                try:
                    kind, f = codec.read(conn, "venue", 0.02)
                except TimeoutError:
                    continue
                last_rx = time.monotonic()
                lapsed_sent = False
                if kind == "app":
                    seq = f.get("seq")
                    if seq is None or codec.implicit_seq:
                        seq = self.state["next_in"]
                    if seq > self.state["next_in"]:
                        self._gap(seq - self.state["next_in"])
                    if seq >= self.state["next_in"]:
                        self.state["next_in"] = seq + 1
                        self._save()
                elif kind == "test-request":
                    conn.send(codec.encode("client", "heartbeat", dict(base, test_id=f.get("test_id", 0), seq=self.state["next_out"])))
                    last_tx = time.monotonic()
                elif kind == "logout":
                    self.events.append((last_rx, f"venue logged out: {f.get('reason', '')}"))
                    self.status = "logged-on-ended"
                    return
        except Closed:
            self.status = "logged-on-ended"
            raise
