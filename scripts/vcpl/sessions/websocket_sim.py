"""The venue side of a WebSocket service, derived from the run book only.

One listener per run-book endpoint of the environment (primary, backup, dr), bound to the sandbox
address of the run book's host at the run book's port, TLS when the endpoint says wss. It accepts
the upgrade only on the run book's path, checks the venue's handshake signature (if any), speaks
the venue's dialect (websocket_dialects), publishes updates with per-product (or per-subscription)
sequence numbers or checksums, and keeps the run book's liveness mechanism on its (scaled) clock.
Everything it observes goes to `log` with a monotonic timestamp, for the checks to read.
"""
from __future__ import annotations

import asyncio
import functools
import json
import math
import ssl
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import Opcode

from vcpl.errors import VcplError
from vcpl.sessions.websocket_dialects import DIALECTS, SimConn

ROLES = ("primary", "backup", "dr")
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# Kalshi's server heartbeat is a protocol Ping frame (KAL-PING); other venues send JSON heartbeats.
PING_FRAME_VENUES = {"kalshi"}


def runbook_endpoints(service: dict[str, Any], env: str) -> list[dict[str, Any]]:
    eps = service["environments"][env].get("endpoints", {})
    return [dict(eps[r], role=r) for r in ROLES if r in eps]


def seconds(hb: dict[str, Any], key: str = "default") -> float:
    return float(hb[key]) / (1000.0 if hb.get("unit") == "ms" else 1.0)


class _RecordingServerConnection(ServerConnection):
    """Notes every Pong frame (the answer to the simulator's protocol-level heartbeat Ping)."""

    on_pong: Any = None

    def process_event(self, event: Any) -> None:
        if getattr(event, "opcode", None) is Opcode.PONG and self.on_pong:
            self.on_pong(self)
        super().process_event(event)


class Simulator:
    def __init__(self, venue: str, env: str, service: dict[str, Any], hosts: dict[str, str], scale: float, tls: tuple[Path, Path, Path]) -> None:
        key = (venue, service["protocol"]["name"])
        if key not in DIALECTS:
            raise VcplError(f"websocket simulator: no dialect for {venue} protocol {key[1]!r} (vcpl.sessions.websocket_dialects)")
        self.venue, self.env, self.service, self.scale = venue, env, service, scale
        self.log: list[tuple[float, str, dict[str, Any]]] = []
        self.dialect = DIALECTS[key][0](venue, env, service, self.note)
        self.endpoints = runbook_endpoints(service, env)
        self.hosts, self.tls = hosts, tls
        hb = service.get("heartbeat", {})
        self.mechanism = hb.get("mechanism", "server-heartbeat")
        self.hb_interval = seconds(hb) / scale if hb else 1.0
        self.tick_interval = min(0.1, self.hb_interval / 4)
        self.servers: list[Server | None] = []
        self.conns: list[set[SimConn]] = []
        self.down_until: list[float] = []
        self.unbound: dict[int, str] = {}     # endpoint index -> why nothing listens there
        self.drop: str | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.numbers = 0

    def note(self, kind: str, **data: Any) -> None:
        self.log.append((time.monotonic(), kind, data))

    def events(self, kind: str, since: float = 0.0, **match: Any) -> list[tuple[float, dict[str, Any]]]:
        return [(t, d) for t, k, d in self.log if k == kind and t >= since and all(d.get(a) == b for a, b in match.items())]

    # --- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if hasattr(self.dialect, "path") and self.endpoints:
            self.dialect.path = self.endpoints[0].get("path", "/")
        for i, ep in enumerate(self.endpoints):
            self.conns.append(set())
            self.down_until.append(0.0)
            address = self.hosts.get(str(ep["host"]))
            if address is None:
                # The rendered files name no such host, so the sandbox does not resolve it: the client cannot get here.
                self.unbound[i] = f"the run book's host {ep['host']} is not among the rendered hosts, so nothing resolves to it"
                self.servers.append(None)
                continue
            ctx = None
            if ep.get("transport") == "wss":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.minimum_version = TLS_VERSIONS.get(str(self.service.get("tls", {}).get("minVersion", "1.2")), ssl.TLSVersion.TLSv1_2)
                ctx.load_cert_chain(self.tls[1], self.tls[2])
            server = await serve(functools.partial(self._handler, index=i), address, int(ep["port"]), ssl=ctx,
                                 process_request=functools.partial(self._process_request, index=i),
                                 ping_interval=None, create_connection=_RecordingServerConnection)
            self.servers.append(server)
        self.tasks.append(asyncio.create_task(self._ticker()))
        self.tasks.append(asyncio.create_task(self._heartbeats()))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for s in self.servers:
            if s is not None:
                s.close()
                await s.wait_closed()

    def all_conns(self) -> list[SimConn]:
        return [c for group in self.conns for c in group]

    # --- faults the checks inject ------------------------------------------------------------------
    def inject_gap(self, product: str) -> None:
        """The next update of `product` is lost on the way (its sequence/book still advances)."""
        self.drop = product

    def kill(self, index: int, outage: float) -> None:
        """The endpoint's process dies: connections reset, and upgrades get 503 for `outage` seconds."""
        self.down_until[index] = time.monotonic() + outage
        self.note("killed", ep=index, outage=outage)
        for c in list(self.conns[index]):
            transport = getattr(c.ws, "transport", None)
            if transport is not None:
                transport.abort()

    # --- connection handling -------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Any, index: int) -> Any:
        i = index
        path = request.path.split("?", 1)[0]
        self.note("attempt", ep=i, path=path)
        if time.monotonic() < self.down_until[i]:
            return connection.respond(503, "venue unavailable (simulated outage)\n")
        expected = self.endpoints[i].get("path", "/")
        if path != expected:
            self.note("bad-path", ep=i, path=path, expected=expected)
            return connection.respond(404, f"no WebSocket service at {path}\n")
        problem = self.dialect.check_handshake(request.headers, path)
        if problem:
            self.note("auth-reject", ep=i, reason=problem)
            return connection.respond(401, f"{problem}\n")
        return None

    async def _handler(self, ws: ServerConnection, index: int) -> None:
        i = index
        self.numbers += 1
        conn = SimConn(ws, self.numbers)
        if isinstance(ws, _RecordingServerConnection):
            ws.on_pong = lambda _ws, n=conn.number: self.note("pong", conn=n)
        self.conns[i].add(conn)
        self.note("open", ep=i, conn=conn.number)
        try:
            await self.dialect.open(conn)
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    await conn.send({"type": "error", "message": "malformed JSON"})
                    continue
                await self.dialect.handle(conn, msg)
        except Exception:   # a reset connection (kill) ends here
            pass
        finally:
            self.conns[i].discard(conn)
            self.note("closed", ep=i, conn=conn.number)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            drop, self.drop = self.drop, None
            try:
                await self.dialect.tick(self.all_conns(), drop)
            except Exception:
                pass   # a connection closed mid-broadcast

    async def _heartbeats(self) -> None:
        if self.mechanism != "server-heartbeat":
            return
        start = time.monotonic()
        for k in range(1, 1_000_000):
            # Absolute schedule: the interval does not drift with the event loop's latency.
            await asyncio.sleep(max(0.0, start + k * self.hb_interval - time.monotonic()))
            conns = self.all_conns()
            try:
                if self.venue in PING_FRAME_VENUES:
                    for c in conns:
                        self.note("heartbeat-sent", conn=c.number)
                        try:
                            await c.ws.ping(b"heartbeat")
                        except Exception:
                            # The previous Ping is still unanswered (websockets refuses a duplicate payload).
                            self.note("pong-missing", conn=c.number)
                            await c.ws.ping(f"heartbeat-{k}".encode())
                else:
                    await self.dialect.heartbeat(conns)
            except Exception:
                pass


def expected_attempts(outage: float, interval: float) -> int:
    """At most this many upgrade attempts fit in an outage when they are `interval` apart (the first
    one immediately, one more at the end of the outage)."""
    return math.floor(outage / interval) + 2
