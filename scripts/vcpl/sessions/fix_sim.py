"""The FIX venue simulator: a QuickFIX acceptor behind one listener per run-book endpoint.

Every expectation comes from the run book (site.runbook), never from the rendered files: CompIDs,
heartbeat bounds, credentials, schedule, reset cadence and what the backup does with sequence
numbers. The listeners bind where the run book's endpoints resolve inside the sandbox
(site.hosts), speak TLS when the endpoint's transport is tls, and forward to one QuickFIX
SocketAcceptor on an internal port. One acceptor behind every endpoint is what "sequence numbers
continue on the backup" means; reset and jump are applied to that session when the primary dies.

Listeners also see every connection and the raw Logon, so a Logon the acceptor cannot even match
to a session (wrong CompIDs) is still reported with the field at fault.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import quickfix as fix  # type: ignore[import-untyped]

from vcpl.endpoints import endpoint_roles
from vcpl.sessions.site import Site, credential_value

SOH = "\x01"
# FIX.5.0SP2 and friends as DefaultApplVerID (1137) enumerations.
APPL_VER_IDS = {"FIX.4.2": "4", "FIX.4.4": "6", "FIX.5.0": "7", "FIX.5.0SP1": "8", "FIX.5.0SP2": "9"}

# How a logon carries each credential key (the gateway's per-venue logon dialect; the reference
# client uses the same table). "signature" = HMAC-SHA256 in RawData(96), Coinbase's scheme.
LOGON_FIELDS = {
    "username": 553, "password": 554,          # NYSE Pillar: Username / Password
    "api-key": 553, "passphrase": 554,         # Coinbase: Username = API key, Password = passphrase
    "api-secret": "signature",                 # Coinbase: RawData = base64(HMAC-SHA256(secret, prehash))
    "session-password": 96,                    # ICE FIX OS: session password in RawData
}
NOT_IN_LOGON = {"trader-password": "sent in ICE's Trader Logon, an application message after the session Logon"}


def mono() -> float:
    """Elapsed seconds from the kernel's uptime: libfaketime fakes every clock_gettime clock,
    monotonic included, and its offset jumps when the rehearsal moves the clock."""
    with open("/proc/uptime", encoding="ascii") as fh:
        return float(fh.read().split()[0])


def parse(raw: str) -> dict[int, str]:
    fields: dict[int, str] = {}
    for part in raw.split(SOH):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            fields.setdefault(int(tag), value)
    return fields


def coinbase_signature(fields: dict[int, str], passphrase: str, secret: str) -> str:
    """Coinbase's Logon signature: prehash SendingTime, MsgType, MsgSeqNum, SenderCompID,
    TargetCompID, Password joined by SOH. The real secret is base64 and decoded first; the
    stand-in is not, so its UTF-8 bytes are the key."""
    prehash = SOH.join([fields.get(52, ""), "A", fields.get(34, ""), fields.get(49, ""), fields.get(56, ""), passphrase])
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


@dataclass
class Expect:
    """What the venue expects of one service in one environment (from the run book)."""

    venue: str
    env: str
    service: str
    begin_string: str
    appl_ver_id: str | None
    sender: str            # the client's SenderCompID (49 on inbound)
    target: str            # the venue's CompID (56 on inbound)
    sender_sub: str | None
    heartbeat: int         # the run book's interval for this environment
    hb_min: int | None
    hb_max: int | None
    auth_keys: list[str]
    auth_method: str
    cadence: str
    failover_sequence: dict[str, Any]
    endpoints: list[tuple[str, str, int, bool]]  # (role, host, port, tls) in run-book order
    reconnect_interval: int
    schedule: dict[str, Any]

    @classmethod
    def of(cls, site: Site, service: dict[str, Any]) -> Expect:
        spec = service["environments"][site.env]
        session = spec["session"]
        hb = service.get("heartbeat", {})
        protocol = service["protocol"]
        return cls(
            venue=site.venue, env=site.env, service=service["name"],
            begin_string=protocol["beginString"],
            appl_ver_id=APPL_VER_IDS.get(protocol.get("defaultApplVerID", "")) if "defaultApplVerID" in protocol else None,
            sender=session["senderCompID"], target=session["targetCompID"], sender_sub=session.get("senderSubID"),
            heartbeat=int(spec.get("heartbeat", hb.get("default", 30))), hb_min=hb.get("min"), hb_max=hb.get("max"),
            auth_keys=list(service.get("auth", {}).get("secretKeys", [])), auth_method=service.get("auth", {}).get("method", "none"),
            cadence=service["sequenceReset"]["cadence"], failover_sequence=dict(service.get("failoverSequence", {})),
            endpoints=[(role, ep["host"], int(ep["port"]), ep.get("transport") == "tls") for role, ep in endpoint_roles(spec)],
            reconnect_interval=int(site.runbook["failover"]["reconnect"]["steps"][0]["intervalSeconds"]),
            schedule=site.runbook["schedule"],
        )

    def logon_problems(self, f: dict[int, str]) -> list[tuple[str, str]]:
        """(rendered field at fault, expected vs got) for a Logon, as the venue would judge it."""
        where = f"run book services[{self.service}].environments.{self.env}"
        problems = []
        if f.get(8) != self.begin_string:
            problems.append(("session.cfg BeginString", f"expected {self.begin_string} (run book protocol.beginString), got {f.get(8)}"))
        if f.get(49) != self.sender:
            problems.append(("session.cfg SenderCompID", f"expected {self.sender} ({where}.session.senderCompID), got {f.get(49)}"))
        if f.get(56) != self.target:
            problems.append(("session.cfg TargetCompID", f"expected {self.target} ({where}.session.targetCompID), got {f.get(56)}"))
        if self.sender_sub and f.get(50) != self.sender_sub:
            problems.append(("session.cfg SenderSubID", f"expected {self.sender_sub} ({where}.session.senderSubID), got {f.get(50)}"))
        if self.appl_ver_id and f.get(1137) != self.appl_ver_id:
            problems.append(("session.cfg DefaultApplVerID", f"expected 1137={self.appl_ver_id} (run book protocol.defaultApplVerID), got {f.get(1137)}"))
        try:
            hb = int(f.get(108, ""))
        except ValueError:
            hb = -1
        if (self.hb_min is not None and hb < self.hb_min) or (self.hb_max is not None and hb > self.hb_max) or hb <= 0:
            problems.append(("session.cfg HeartBtInt", f"venue accepts HeartBtInt {self.hb_min or 1}..{self.hb_max or 'any'} s (run book services[{self.service}].heartbeat), logon had {f.get(108)}"))
        problems += self.credential_problems(f)
        return problems

    def credential_problems(self, f: dict[int, str]) -> list[tuple[str, str]]:
        problems = []
        values = {k: credential_value(self.venue, self.env, f"{self.service}-{k}") for k in self.auth_keys}
        for key in self.auth_keys:
            carrier = LOGON_FIELDS.get(key)
            secret = f"/var/run/secrets/venue/{self.service}-{key}"
            if carrier is None:
                continue
            if carrier == "signature":
                want = coinbase_signature(f, values.get("passphrase", ""), values[key])
                if f.get(96) != want:
                    problems.append((secret, "RawData(96) is not the HMAC-SHA256 signature of the Logon with this secret"))
            elif isinstance(carrier, int) and f.get(carrier) != values[key]:
                got = "absent" if carrier not in f else "a different value"
                problems.append((secret, f"Logon tag {carrier} must carry it; got {got}"))
        return problems


@dataclass
class Connection:
    role: str
    at: float
    logon: dict[int, str] | None = None


class Endpoint:
    """One run-book endpoint: a listener that forwards to the acceptor while up and accepts then
    resets (counting the attempt) while down, as a dead venue gateway behind its address would."""

    def __init__(self, role: str, address: str, port: int, tls: ssl.SSLContext | None, backend: int, log: list[Connection]):
        self.role, self.address, self.port, self.tls, self.backend, self.log = role, address, port, tls, backend, log
        self.up = True
        self.attempts: list[float] = []
        self._live: list[socket.socket] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((address, port))
        self._sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def kill(self) -> None:
        """Drop every open connection (a venue gateway that died)."""
        with self._lock:
            live, self._live = self._live, []
        for s in live:
            _reset(s)

    def set_up(self, up: bool) -> None:
        self.up = up
        if not up:
            self.kill()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.attempts.append(mono())
            if not self.up:
                _reset(conn)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        record = Connection(self.role, mono())
        self.log.append(record)
        try:
            if self.tls:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            back = socket.create_connection(("127.0.0.1", self.backend))
        except (OSError, ssl.SSLError):
            _reset(conn)
            return
        with self._lock:
            self._live += [conn, back]
        relay(conn, back, record)


def _reset(s: socket.socket) -> None:
    """Drop a connection at once. shutdown() also wakes the thread blocked in recv() on it
    (close() alone would not, and the peer would never notice)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    for step in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
        try:
            step()
        except OSError:
            pass


def _read_ready(sock: socket.socket) -> bytes | None:
    """What a readable socket has; None when a TLS socket was readable for a record that carries
    no application data. A TLS 1.3 server sends its session tickets after the handshake: a
    blocking recv() would consume the ticket and then wait for data the server will only send
    after it has the client's Logon, which this same thread would never forward."""
    if not isinstance(sock, ssl.SSLSocket):
        return sock.recv(65536)
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    finally:
        sock.setblocking(True)


def relay(client: socket.socket, server: socket.socket, record: Connection | None = None) -> None:
    """Copy bytes both ways in ONE thread until either side closes. A TLS socket must not be read
    in one thread while another writes it (OpenSSL objects are not thread-safe), so there is no
    thread per direction. `record` gets the first message from `client` (the Logon)."""
    import select

    head = b""
    peers: dict[socket.socket, socket.socket] = {client: server, server: client}
    try:
        while True:
            ready: list[socket.socket] = [s for s in peers if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready = select.select(list(peers), [], [], 1.0)[0]
            for src in ready:
                data = _read_ready(src)
                if data is None:
                    continue
                if not data:
                    return
                if src is client and record is not None and record.logon is None:
                    head += data
                    if b"\x0110=" in head and head.endswith(b"\x01"):
                        record.logon = parse(head.decode("latin-1"))
                peers[src].sendall(data)
    except (OSError, ValueError):
        return
    finally:
        for sock in (client, server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


def self_signed(work: Path, hosts: list[str]) -> ssl.SSLContext:
    """A throwaway server certificate for the TLS endpoints (the client's sidecar does not verify it)."""
    key, cert = work / "venue-tls.key", work / "venue-tls.crt"
    if not cert.exists():
        san = ",".join(("IP:" if h.replace(".", "").isdigit() else "DNS:") + h for h in hosts) or "DNS:venue"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vcpl-venue-simulator",
                        "-addext", f"subjectAltName={san}", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def acceptor_schedule(schedule: dict[str, Any], moment: float) -> list[str]:
    """The run book's window as QuickFIX C++ settings. The C++ engine has no TimeZone setting
    (StartTime/EndTime are UTC), so the venue's local open and close of the current week are
    converted to UTC here; Weekdays is not read by it either, so a daily window is open every day."""
    if schedule.get("continuous"):
        return ["NonStopSession=Y"]
    zone = ZoneInfo(schedule["timeZone"])
    local = dt.datetime.fromtimestamp(moment, zone)

    def utc(day: str | None, clock: str) -> tuple[str, str]:
        hours, minutes = (int(x) for x in clock.split(":"))
        base = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        if day:
            base += dt.timedelta(days=(DAY_NAMES.index(day) - local.weekday()) % 7)
        moved = base.astimezone(dt.timezone.utc)
        return moved.strftime("%A"), moved.strftime("%H:%M:%S")

    if "weekly" in schedule:
        week = schedule["weekly"]
        open_day, open_time = utc(week["open"]["day"], week["open"]["time"])
        close_day, close_time = utc(week["close"]["day"], week["close"]["time"])
        return [f"StartDay={open_day}", f"StartTime={open_time}", f"EndDay={close_day}", f"EndTime={close_time}"]
    return [f"StartTime={utc(None, schedule['daily']['open'])[1]}", f"EndTime={utc(None, schedule['daily']['close'])[1]}"]


DAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]  # datetime.weekday() order


class VenueApp(fix.Application):
    """The acceptor's application: judges each Logon against the run book and records what the
    client sends (heartbeats, TestRequest answers, ResendRequests)."""

    def __init__(self, expect: Expect):
        super().__init__()
        self.expect = expect
        self.logons: list[tuple[float, dict[int, str], list[tuple[str, str]]]] = []
        self.heartbeats: list[float] = []
        self.test_answers: dict[str, float] = {}
        self.resend_requests = 0
        self.logged_on = False
        self.logouts: list[float] = []

    def onCreate(self, sessionID: Any) -> None: ...

    def onLogon(self, sessionID: Any) -> None:
        self.logged_on = True

    def onLogout(self, sessionID: Any) -> None:
        self.logged_on = False
        self.logouts.append(mono())

    def toAdmin(self, message: Any, sessionID: Any) -> None: ...

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        f = parse(message.toString())
        kind = f.get(35)
        if kind == "A":
            problems = self.expect.logon_problems(f)
            self.logons.append((mono(), f, problems))
            if problems:
                raise fix.RejectLogon("; ".join(f"{field}: {detail}" for field, detail in problems)[:200])
        elif kind == "0":
            if 112 in f:
                self.test_answers[f[112]] = mono()
            else:
                self.heartbeats.append(mono())
        elif kind == "2":
            self.resend_requests += 1

    def toApp(self, message: Any, sessionID: Any) -> None: ...

    def fromApp(self, message: Any, sessionID: Any) -> None: ...


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Venue:
    """The whole simulated venue for one FIX service."""

    def __init__(self, site: Site, service: dict[str, Any], work: Path):
        self.expect = Expect.of(site, service)
        e = self.expect
        self.work = work / f"venue-{e.service}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        per_connection = e.cadence == "per-connection"
        lines = ["[DEFAULT]", "ConnectionType=acceptor", f"FileStorePath={self.work / 'store'}", f"FileLogPath={self.work / 'log'}",
                 f"SocketAcceptPort={self.port}", "UseDataDictionary=N", "ValidateUserDefinedFields=N", "CheckLatency=N"]
        lines += acceptor_schedule(e.schedule, time.time())
        lines += ["", "[SESSION]", f"BeginString={e.begin_string}", f"SenderCompID={e.target}", f"TargetCompID={e.sender}"]
        if e.appl_ver_id:
            lines.append(f"DefaultApplVerID={service['protocol']['defaultApplVerID']}")
        yn = "Y" if per_connection else "N"
        lines += [f"ResetOnLogon={yn}", f"ResetOnLogout={yn}", f"ResetOnDisconnect={yn}"]
        cfg = self.work / "acceptor.cfg"
        cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.settings = fix.SessionSettings(str(cfg))
        self.app = VenueApp(e)
        self.store_factory = fix.FileStoreFactory(self.settings)
        self.log_factory = fix.FileLogFactory(self.settings)
        self.acceptor = fix.SocketAcceptor(self.app, self.store_factory, self.settings, self.log_factory)
        self.session_id = fix.SessionID(e.begin_string, e.target, e.sender)
        self.connections: list[Connection] = []
        self.endpoints: list[Endpoint] = []
        self.problems: list[tuple[str, str]] = []   # endpoints the simulator could not open
        tls_ctx = None
        if any(t for *_, t in e.endpoints):
            tls_ctx = self_signed(self.work, [h for _, h, _, t in e.endpoints if t])
        for role, host, port, tls in e.endpoints:
            address = site.hosts.get(host)
            if address is None:
                self.problems.append((f"gateway.json services[{e.service}].endpoints", f"run book {role} endpoint {host}:{port} is not rendered anywhere"))
                continue
            self.endpoints.append(Endpoint(role, address, port, tls_ctx if tls else None, self.port, self.connections))

    def start(self) -> None:
        self.acceptor.start()

    def stop(self) -> None:
        """Take every endpoint down. The acceptor itself is left to the process's exit: stopping a
        QuickFIX SocketAcceptor whose session the initiator in this process still holds has
        crashed the engine (SIGSEGV in SocketAcceptor::stop) under load."""
        for ep in self.endpoints:
            ep.set_up(False)

    @property
    def session(self) -> Any:
        return fix.Session.lookupSession(self.session_id)

    def expected_client_seq(self) -> int:
        return int(self.session.getExpectedTargetNum())

    def test_request(self, ident: str) -> None:
        msg = fix.Message()
        msg.getHeader().setField(fix.MsgType("1"))
        msg.setField(fix.TestReqID(ident))
        fix.Session.sendToTarget(msg, self.session_id)

    def endpoint(self, role: str) -> Endpoint | None:
        return next((ep for ep in self.endpoints if ep.role == role), None)
