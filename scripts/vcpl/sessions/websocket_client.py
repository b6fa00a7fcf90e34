"""The reference client of a WebSocket service: the gateway's behaviour, from the rendered files only.

It reads gateway.json at its mount path (services[<name>]: endpoints in failover order, heartbeat,
sequenceReset, authMethod, credentials, tls; failover.reconnect) and the credential files it lists
under /var/run/secrets/venue. It never reads the run book. What it does and sees goes to `log`
(monotonic timestamps, same clock as the simulator's) and, as the gateway would, to the metrics of
the alert contract. Intervals are divided by `scale` (a clock shared with the simulator).
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.frames import Opcode

from vcpl.sessions.metrics import Recorder
from vcpl.sessions.websocket_dialects import DIALECTS, Credentials

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
SUBSCRIBE_TIMEOUT_S = 2.0
LAST_PACKET_EVERY_S = 0.25      # how often the last-packet gauge is re-set (a scrape would see no finer)
MISSED_PINGS_BEFORE_DROP = 2    # app-ping: unanswered pings before the client gives up the connection
HEARTBEAT_GRACE = 2.0           # server-heartbeat: silence of this many intervals is a timeout


class _RecordingClientConnection(ClientConnection):
    """Notes every Ping frame from the venue (Kalshi's heartbeat); the library still answers with Pong."""

    on_ping: Any = None

    def process_event(self, event: Any) -> None:
        if getattr(event, "opcode", None) is Opcode.PING and self.on_ping:
            self.on_ping()
        super().process_event(event)


class Client:
    def __init__(self, root: Path, gateway_path: str, service: str, scale: float, ca_file: Path, metrics: Recorder) -> None:
        self.root, self.gateway_path, self.name, self.scale = root, gateway_path, service, scale
        self.ca_file, self.metrics = ca_file, metrics
        self.log: list[tuple[float, str, dict[str, Any]]] = []
        self.logged_on = False
        self.stopped = False
        self.ws: ClientConnection | None = None
        self.fatal: str | None = None        # a rendered file the client cannot use at all
        self._last_packet_set = 0.0

    def note(self, kind: str, **data: Any) -> None:
        self.log.append((time.monotonic(), kind, data))

    def events(self, kind: str, since: float = 0.0, **match: Any) -> list[tuple[float, dict[str, Any]]]:
        return [(t, d) for t, k, d in self.log if k == kind and t >= since and all(d.get(a) == b for a, b in match.items())]

    # --- the rendered configuration --------------------------------------------------------------------
    def load(self) -> bool:
        gw = json.loads((self.root / self.gateway_path.lstrip("/")).read_text(encoding="utf-8"))
        svc = next((s for s in gw.get("services", []) if s.get("name") == self.name), None)
        if svc is None:
            self.fatal = f"gateway.json has no service {self.name!r}"
            return False
        key = (str(gw.get("venue")), str(svc.get("protocol", {}).get("name")))
        if key not in DIALECTS:
            self.fatal = f"no client dialect for {key}"
            return False
        self.gw, self.svc = gw, svc
        self.endpoints: list[dict[str, Any]] = svc.get("endpoints", [])
        hb = svc.get("heartbeat", {})
        self.mechanism = hb.get("mechanism", "server-heartbeat")
        self.interval = float(hb.get("interval", hb.get("default", 1))) / (1000.0 if hb.get("unit") == "ms" else 1.0) / self.scale
        self.cadence = svc.get("sequenceReset", {}).get("cadence", "none")
        files = {}
        for path in svc.get("credentials", []):
            f = self.root / str(path).lstrip("/")
            files[Path(path).name] = f.read_text(encoding="utf-8") if f.exists() else ""
        self.dialect = DIALECTS[key][1](svc.get("authMethod", "none"), Credentials(files))
        reconnect = gw.get("failover", {}).get("reconnect", {})
        self.steps = reconnect.get("steps", [{"attempts": 1, "intervalSeconds": 1}])
        self.then = reconnect.get("then", "repeat")
        return True

    def _attempts(self, after: int) -> Iterator[tuple[float, int]]:
        """(delay before the attempt, endpoint index) per the rendered reconnect plan, starting with
        the endpoint after `after` in failover order (the first attempt is immediate)."""
        n = 0
        while True:
            for step in self.steps:
                role = step.get("endpoint", "any")
                targets = [i for i, e in enumerate(self.endpoints) if role == "any" or e.get("role") == role] or list(range(len(self.endpoints)))
                first = next((k for k, i in enumerate(targets) if i > after), 0)
                for k in range(int(step["attempts"])):
                    yield (0.0 if n == 0 else float(step["intervalSeconds"]) / self.scale, targets[(first + k) % len(targets)])
                    n += 1
            if self.then != "repeat":
                return

    # --- main loop -------------------------------------------------------------------------------------
    async def run(self) -> None:
        if not self.load() or not self.endpoints:
            self.fatal = self.fatal or f"gateway.json services[{self.name}] has no endpoints"
            self.note("fatal", reason=self.fatal)
            return
        self.metrics.set("vcpl_session_logged_on", 0, service=self.name)
        after = -1
        while not self.stopped:
            for delay, target in self._attempts(after):
                if delay:
                    await asyncio.sleep(delay)
                if self.stopped:
                    return
                if await self._session(target):
                    after = target
                    break
            else:
                self.note("plan-exhausted", then=self.then)
                return

    async def stop(self) -> None:
        self.stopped = True
        if self.ws is not None:
            await self.ws.close()

    def _ssl(self, ep: dict[str, Any]) -> ssl.SSLContext | None:
        if ep.get("transport") != "wss":
            return None
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.minimum_version = TLS_VERSIONS.get(str(self.svc.get("tls", {}).get("minVersion", "1.2")), ssl.TLSVersion.TLSv1_2)
        return ctx

    async def _session(self, index: int) -> bool:
        """One connection to endpoints[index]; True if it logged on (and has since ended)."""
        ep = self.endpoints[index]
        scheme = "wss" if ep.get("transport") == "wss" else "ws"
        path = str(ep.get("path", "/"))
        uri = f"{scheme}://{ep['host']}:{ep['port']}{path}"
        self.note("attempt", ep=index, uri=uri)
        try:
            ws = await connect(uri, ssl=self._ssl(ep), additional_headers=self.dialect.headers(path), ping_interval=None,
                               open_timeout=max(1.0, 2 * self.interval), create_connection=_RecordingClientConnection)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                self.metrics.inc("vcpl_session_logon_rejects_total", service=self.name)
            self.note("connect-failed", ep=index, error=f"HTTP {status}: {exc.response.body.decode(errors='replace').strip()}", status=status)
            return False
        except Exception as exc:
            self.note("connect-failed", ep=index, error=f"{type(exc).__name__}: {exc}")
            return False
        self.ws = ws
        assert isinstance(ws, _RecordingClientConnection)
        ws.on_ping = lambda: self._heartbeat_seen("ping-frame")
        self.expected: dict[str, int | None] = {}
        self.resyncing: dict[str, str] = {}
        self.subscribed: set[str] = set()
        self.pongs: set[int] = set()
        self.last_heartbeat = time.monotonic()
        try:
            if not await self._subscribe(ws, index):
                await ws.close()
                return False
            self.logged_on = True
            self.metrics.set("vcpl_session_logged_on", 1, service=self.name)
            self.note("logon", ep=index)
            liveness = asyncio.create_task(self._liveness(ws))
            try:
                async for raw in ws:
                    await self._on_message(ws, raw)
            except Exception as exc:
                self.note("dropped", ep=index, error=f"{type(exc).__name__}: {exc}")
            finally:
                liveness.cancel()
            return True
        finally:
            if self.logged_on:
                self.logged_on = False
                self.metrics.set("vcpl_session_logged_on", 0, service=self.name)
                self.note("logged-off", ep=index)
            self.ws = None

    async def _subscribe(self, ws: ClientConnection, index: int) -> bool:
        products = list(self.dialect.PRODUCTS)
        for msg in self.dialect.subscribe(products):
            await ws.send(json.dumps(msg))
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        try:
            while set(products) - self.subscribed:
                raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
                await self._on_message(ws, raw)
                errors = self.events("error", since=deadline - SUBSCRIBE_TIMEOUT_S)
                if errors:
                    self.metrics.inc("vcpl_session_logon_rejects_total", service=self.name)
                    self.note("connect-failed", ep=index, error=f"subscribe refused: {errors[-1][1]['text']}")
                    return False
        except Exception as exc:
            self.note("connect-failed", ep=index, error=f"no subscribe acknowledgement for {sorted(set(products) - self.subscribed)}: {type(exc).__name__} {exc}")
            return False
        return True

    # --- inbound ---------------------------------------------------------------------------------------
    def _packet(self) -> None:
        now = time.time()
        if now - self._last_packet_set >= LAST_PACKET_EVERY_S:
            self._last_packet_set = now
            self.metrics.set("vcpl_feed_last_packet_timestamp_seconds", now, service=self.name)

    def _heartbeat_seen(self, product: Any) -> None:
        self.last_heartbeat = time.monotonic()
        self.note("heartbeat", product=product)

    async def _on_message(self, ws: ClientConnection, raw: Any) -> None:
        self._packet()
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        for ev in self.dialect.parse(msg):
            kind = ev[0]
            if kind == "subscribed":
                self.subscribed.add(ev[1])
                self.expected[ev[1]] = None          # the next sequence is the baseline
                if self.resyncing.get(ev[1]) == "ack":
                    self.resyncing[ev[1]] = "data"
            elif kind == "heartbeat":
                self._heartbeat_seen(ev[1])
            elif kind == "pong":
                self.pongs.add(int(ev[1]))
            elif kind == "error":
                self.note("error", text=ev[1])
            elif kind == "seq":
                self._on_seq(ws, ev[1], ev[2])
            elif kind == "checksum":
                # Checksums are verified whatever the rendered cadence says: a book that disagrees is rebuilt.
                product, ok = ev[1], ev[2]
                if product in self.resyncing:
                    if self.resyncing[product] == "data" and ok:
                        del self.resyncing[product]
                        self.note("recovered", product=product)
                    continue
                if not ok:
                    await self._gap(ws, product, "book checksum mismatch (an update was lost)")

    def _on_seq(self, ws: ClientConnection, product: str, seq: int) -> None:
        if self.cadence == "none":
            return   # the rendering says this feed has no sequence numbers: nothing is checked
        state = self.resyncing.get(product)
        if state == "ack":
            return   # the old subscription's tail, before the resubscribe is acknowledged
        last = self.expected.get(product)
        self.expected[product] = seq
        if state == "data":
            del self.resyncing[product]
            self.note("recovered", product=product, sequence=seq)
            return
        if last is not None and seq != last + 1:
            asyncio.ensure_future(self._gap(ws, product, f"expected sequence {last + 1}, got {seq}"))

    async def _gap(self, ws: ClientConnection, product: str, detail: str) -> None:
        """The venue's recovery (venues/protocols.yaml websocket): resubscribe and rebuild from the snapshot."""
        self.note("gap", product=product, detail=detail)
        if self.cadence != "none":
            self.metrics.inc("vcpl_session_sequence_gaps_total", service=self.name)
        self.metrics.inc("vcpl_session_resend_requests_total", service=self.name)
        self.resyncing[product] = "ack"
        for msg in self.dialect.resubscribe(product):
            await ws.send(json.dumps(msg))

    # --- liveness --------------------------------------------------------------------------------------
    async def _liveness(self, ws: ClientConnection) -> None:
        start = time.monotonic()
        if self.mechanism == "app-ping":
            missed = 0
            for n in range(1, 1_000_000):
                await asyncio.sleep(max(0.0, start + n * self.interval - time.monotonic()))
                if n > 1 and (n - 1) not in self.pongs:
                    missed += 1
                    self.metrics.inc("vcpl_session_heartbeat_timeouts_total", service=self.name)
                    self.note("heartbeat-timeout", detail=f"ping {n - 1} unanswered")
                    if missed >= MISSED_PINGS_BEFORE_DROP:
                        await ws.close(1001, "ping unanswered")
                        return
                else:
                    missed = 0
                msg = self.dialect.ping(n)
                if msg is None:
                    self.note("no-app-ping", detail="the venue's messages have no application ping")
                    return
                await ws.send(json.dumps(msg))
                self.note("ping-sent", n=n)
        else:
            while True:
                await asyncio.sleep(self.interval / 4)
                silent = time.monotonic() - self.last_heartbeat
                if silent > HEARTBEAT_GRACE * self.interval:
                    self.metrics.inc("vcpl_session_heartbeat_timeouts_total", service=self.name)
                    self.note("heartbeat-timeout", detail=f"no heartbeat for {silent:.2f} s")
                    await ws.close(1001, "heartbeat timeout")
                    return
