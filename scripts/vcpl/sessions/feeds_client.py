"""The reference feed client: the gateway's side, reading ONLY the rendered files
(channels.json and gateway.json at their mount paths).

Per channel it joins lines A and B on the rendered groups, ports and interfaces, arbitrates by
sequence number, waits a short arbitration window for the other line before calling a hole a
gap, then fills the gap with the rendered recovery entries of the service, in order, falling
back to the next entry when one fails. It marks a line down after three rendered heartbeat
intervals without a packet (alerts.FEED_STALE_SECONDS where no heartbeat is rendered), and
records the alert contract's metrics as things change.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import queue
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcpl.alerts import FEED_STALE_SECONDS
from vcpl.sessions import feeds_layers as fl
from vcpl.sessions.metrics import Recorder

log = logging.getLogger("vcpl.sessions.feeds.client")
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)   # Linux; not always exported by Python
ARBITRATION_WINDOW = 0.06    # seconds the arbiter waits for the other line before calling a gap
RECOVERY_TIMEOUT = 0.8       # seconds (scaled clock) one recovery attempt may take


def _is_multicast(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_multicast
    except ValueError:
        return False


def join(group: str, port: int, interface: str) -> socket.socket:
    """A socket receiving group:port on one named interface only."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Without this Linux hands the socket every group any socket joined, on any interface,
    # which would hide a wrong interface in the rendering.
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    sock.bind((group, port))
    mreqn = struct.pack("4s4si", socket.inet_aton(group), socket.inet_aton("0.0.0.0"), socket.if_nametoindex(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    sock.setblocking(False)
    return sock


@dataclass
class Event:
    t: float
    kind: str          # line-up, line-down, stale, gap, filled, unfilled, attempt-failed, late-heartbeat
    data: dict[str, Any] = field(default_factory=dict)


class ChannelClient:
    def __init__(self, channel: dict[str, Any], service: dict[str, Any], recovery: list[tuple[int, dict[str, Any]]],
                 metrics: Recorder, scale: float) -> None:
        self.channel, self.service, self.recovery = channel, service, recovery
        self.cid = str(channel["id"])
        self.name = service["name"]
        self.layer = fl.layer(service["protocol"]["sessionLayer"])
        self.metrics = metrics
        self.scale = scale
        hb = service.get("heartbeat")
        if hb and hb.get("interval"):
            self.heartbeat = hb["interval"] / (1000 if hb.get("unit") == "ms" else 1) / scale
            self.line_timeout = 3 * self.heartbeat
        else:
            self.heartbeat = None
            self.line_timeout = FEED_STALE_SECONDS / scale
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.next: int | None = None
        self.state = 0
        self.buffer: dict[int, bytes] = {}
        self.hole_since: float | None = None
        self.recovering = False
        self.session = b""
        self.received = {"a": 0, "b": 0}
        self.last = {"a": 0.0, "b": 0.0}
        self.up = {"a": False, "b": False}
        self.max_silence = {"a": 0.0, "b": 0.0}   # longest pause between packets while up
        self.socks: dict[socket.socket, str] = {}
        self.retrans: queue.Queue[fl.Packet] = queue.Queue()
        self.errors: list[str] = []
        self.gaps: queue.Queue[tuple[int, int]] = queue.Queue()
        self._stop = threading.Event()

    # --- set up -------------------------------------------------------------------------------
    def open(self) -> None:
        for line in ("a", "b"):
            spec = self.channel.get(line, {})
            try:
                self.socks[join(spec["group"], int(spec["port"]), spec["interface"])] = line
            except (OSError, KeyError) as exc:
                self.errors.append(f"line {line}: cannot join {spec.get('group')}:{spec.get('port')} on {spec.get('interface')}: {exc}")
            self.metrics.set("vcpl_feed_line_up", 0, service=self.name, channel=self.cid, line=line)
        for _, entry in self.recovery:
            if entry.get("kind") == "multicast-retransmission":
                for line in ("a", "b"):
                    spec = entry.get(line, {})
                    try:
                        self.socks[join(spec["group"], int(spec["port"]), spec["interface"])] = "r" + line
                    except (OSError, KeyError) as exc:
                        self.errors.append(f"retransmission line {line}: cannot join: {exc}")
        threading.Thread(target=self._receive, daemon=True, name=f"client-{self.cid}").start()
        threading.Thread(target=self._recover, daemon=True, name=f"client-recovery-{self.cid}").start()

    def close(self) -> None:
        self._stop.set()
        time.sleep(0.05)
        for s in self.socks:
            s.close()

    def note(self, what: str, **data: Any) -> None:
        self.events.append(Event(time.monotonic(), what, data))

    # --- receive, arbitrate -------------------------------------------------------------------
    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(list(self.socks), [], [], 0.01)
            except (OSError, ValueError):
                return
            now = time.monotonic()
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    continue
                try:
                    packet = self.layer.decode(data)
                except ValueError as exc:
                    self.errors.append(str(exc))
                    continue
                line = self.socks[sock]
                if line.startswith("r"):
                    self.retrans.put(packet)
                else:
                    self._on_line(line, packet, now)
            self._tick(now)

    def _on_line(self, line: str, packet: fl.Packet, now: float) -> None:
        self.received[line] += 1
        if self.up[line]:
            self.max_silence[line] = max(self.max_silence[line], now - self.last[line])
        else:
            self.up[line] = True
            self.metrics.set("vcpl_feed_line_up", 1, service=self.name, channel=self.cid, line=line)
            self.note("line-up", line=line)
        self.last[line] = now
        self.metrics.set("vcpl_feed_last_packet_timestamp_seconds", time.time(), service=self.name, channel=self.cid)
        if packet.session:
            self.session = packet.session
        with self.lock:
            if self.next is None:
                self.next = packet.seq
            for i, message in enumerate(packet.messages):
                if packet.seq + i >= self.next:
                    self.buffer[packet.seq + i] = message
            self._drain(now)

    def _drain(self, now: float) -> None:
        assert self.next is not None
        while self.next in self.buffer:
            self.state = (self.state + fl.value_of(self.buffer.pop(self.next))) % 2**64
            self.next += 1
        self.hole_since = (self.hole_since or now) if self.buffer else None

    def _tick(self, now: float) -> None:
        for line in ("a", "b"):
            if self.up[line] and now - self.last[line] > self.line_timeout:
                self.up[line] = False
                self.metrics.set("vcpl_feed_line_up", 0, service=self.name, channel=self.cid, line=line)
                self.note("line-down", line=line, silent=round(now - self.last[line], 3))
                if not any(self.up.values()):
                    self.note("stale")
        with self.lock:
            if self.buffer and not self.recovering and self.hole_since and now - self.hole_since > ARBITRATION_WINDOW:
                assert self.next is not None
                first, end = self.next, min(self.buffer) - 1
                self.recovering = True
                self.metrics.inc("vcpl_feed_gap_packets_total", end - first + 1, service=self.name, channel=self.cid)
                self.note("gap", first=first, last=end)
                self.gaps.put((first, end))

    # --- recovery -----------------------------------------------------------------------------
    def _recover(self) -> None:
        while not self._stop.is_set():
            try:
                first, last = self.gaps.get(timeout=0.1)
            except queue.Empty:
                continue
            filled_by = None
            for position, (rendered_index, entry) in enumerate(self.recovery):
                self.metrics.inc("vcpl_recovery_requests_total", service=self.name, recovery=str(position))
                started = time.monotonic()
                try:
                    done = self._attempt(entry, first, last)
                except (OSError, ValueError, KeyError) as exc:
                    done, why = False, f"{type(exc).__name__}: {exc}"
                else:
                    why = "" if done else "no answer filled the gap"
                if done:
                    filled_by = position
                    self.note("filled", first=first, last=last, position=position, rendered=rendered_index,
                              kind=entry.get("kind"), seconds=round(time.monotonic() - started, 3))
                    break
                self.note("attempt-failed", first=first, last=last, position=position, rendered=rendered_index, why=why or self._why)
            with self.lock:
                if filled_by is None:
                    # Nothing filled it: skip to what we have, as a gateway must to stay live.
                    self.note("unfilled", first=first, last=last)
                    if self.buffer:
                        self.next = min(self.buffer)
                self.recovering = False
                self._drain(time.monotonic())

    _why = ""

    def _apply_messages(self, items: dict[int, bytes]) -> None:
        with self.lock:
            assert self.next is not None
            for s, m in items.items():
                if s >= self.next:
                    self.buffer[s] = m
            self._drain(time.monotonic())

    def _apply_snapshot(self, seq: int, state: int) -> None:
        with self.lock:
            self.state, self.next = state, seq + 1
            for s in [s for s in self.buffer if s <= seq]:
                del self.buffer[s]
            self._drain(time.monotonic())

    def _filled(self, last: int) -> bool:
        with self.lock:
            return self.next is not None and self.next > last

    def _attempt(self, entry: dict[str, Any], first: int, last: int) -> bool:
        self._why = ""
        kind = entry.get("kind")
        if kind == "udp-rerequest":
            return self._udp_rerequest(entry, first, last)
        if kind == "multicast-snapshot":
            return self._multicast_snapshot(entry, last)
        return self._tcp(entry, kind, first, last)

    def _credentials(self) -> dict[str, str]:
        found = {}
        for path in self.service.get("credentials", []):
            try:
                found[Path(path).name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.errors.append(f"credential {path}: {exc.strerror}")
        return found

    def _udp_rerequest(self, entry: dict[str, Any], first: int, last: int) -> bool:
        limit = entry.get("limits", {}).get("messagesPerRequest", 65535)
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            target = (socket.gethostbyname(entry["host"]), int(entry["port"]))
            got: dict[int, bytes] = {}
            for start in range(first, last + 1, limit):
                count = min(limit, last + 1 - start)
                sock.sendto(struct.pack(fl.MOLD_REQUEST, self.session.ljust(10)[:10], start, count), target)
            while time.monotonic() < deadline and not all(s in got for s in range(first, last + 1)):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    packet = self.layer.decode(sock.recv(65536))
                except (TimeoutError, socket.timeout):
                    break
                got.update({packet.seq + i: m for i, m in enumerate(packet.messages)})
        self._apply_messages(got)
        self._why = f"{len(got)} of {last - first + 1} messages answered by {target[0]}:{target[1]}"
        return self._filled(last)

    def _multicast_snapshot(self, entry: dict[str, Any], last: int) -> bool:
        host = entry["host"] if _is_multicast(entry["host"]) else socket.gethostbyname(entry["host"])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if _is_multicast(host):
                sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
                sock.bind((host, int(entry["port"])))
                # The snapshot loop arrives on the line-A interface of the service's channel.
                nic = self.channel.get("a", {}).get("interface", "")
                mreqn = struct.pack("4s4si", socket.inet_aton(host), socket.inet_aton("0.0.0.0"), socket.if_nametoindex(nic))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            else:
                sock.bind((host, int(entry["port"])))
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    snap = fl.parse_snapshot_datagram(sock.recv(2048))
                except (TimeoutError, socket.timeout):
                    break
                if snap and snap[0] >= last:
                    self._apply_snapshot(*snap)
                    return True
        self._why = f"no snapshot at or after {last} on {host}:{entry['port']} within {RECOVERY_TIMEOUT}s"
        return False

    def _tcp(self, entry: dict[str, Any], kind: str | None, first: int, last: int) -> bool:
        limits = entry.get("limits", {})
        per_request = limits.get("messagesPerRequest", last - first + 1)
        per_connection = limits.get("requestsPerConnection")
        chunks = [(s, min(per_request, last + 1 - s)) for s in range(first, last + 1, per_request)]
        if kind == "tcp-snapshot":
            chunks = [(0, 0)]
        got: dict[int, bytes] = {}
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while chunks and time.monotonic() < deadline:
            with socket.create_connection((entry["host"], int(entry["port"])), timeout=RECOVERY_TIMEOUT) as conn:
                fl.send_frame(conn, b"L", {"service": self.name, "credentials": self._credentials()})
                answer = fl.recv_frame(conn)
                if answer is None or answer[0] != b"A":
                    self._why = f"login: {answer[1].decode() if answer else 'connection closed'}"
                    return False
                served = 0
                while chunks and (per_connection is None or served < per_connection):
                    start, count = chunks.pop(0)
                    served += 1
                    if kind == "tcp-snapshot":
                        fl.send_frame(conn, b"S", {"channel": self.channel["id"]})
                    else:
                        fl.send_frame(conn, b"R", {"channel": self.channel["id"], "seq": start, "count": count})
                    while (frame := fl.recv_frame(conn)) is not None:
                        ftype, body = frame
                        if ftype == b"X":
                            self._why = f"rejected: {body.decode()}"
                            return False
                        if ftype == b"N":
                            snap = json.loads(body)
                            if snap["seq"] < last:
                                self._why = f"snapshot at {snap['seq']} is older than the gap's end {last}"
                                return False
                            self._apply_snapshot(int(snap["seq"]), int(snap["state"]))
                        elif ftype == b"P":
                            packet = self.layer.decode(body)
                            got.update({packet.seq + i: m for i, m in enumerate(packet.messages)})
                        elif ftype in (b"E", b"A"):
                            break
                    if kind == "multicast-retransmission":
                        got.update(self._collect_retransmissions(start, count, deadline))
        if kind != "tcp-snapshot":
            self._apply_messages(got)
        if not self._filled(last):
            self._why = self._why or f"{len(got)} of {last - first + 1} messages received"
        return self._filled(last)

    def _collect_retransmissions(self, start: int, count: int, deadline: float) -> dict[int, bytes]:
        got: dict[int, bytes] = {}
        while time.monotonic() < deadline and not all(s in got for s in range(start, start + count)):
            try:
                packet = self.retrans.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            got.update({packet.seq + i: m for i, m in enumerate(packet.messages)})
        return got


class FeedClient:
    """Every channel channels.json renders, with the gateway.json service each belongs to."""

    def __init__(self, channels_path: str, gateway_path: str, metrics: Recorder, scale: float, only_service: str | None = None) -> None:
        channels = json.loads(Path(channels_path).read_text(encoding="utf-8"))
        gateway = json.loads(Path(gateway_path).read_text(encoding="utf-8"))
        services = {s["name"]: s for s in gateway.get("services", [])}
        self.channels: dict[tuple[str, int], ChannelClient] = {}
        for channel in channels.get("channels", []):
            service = services.get(channel.get("service"))
            if service is None or (only_service and channel.get("service") != only_service):
                continue
            recovery = [(i, r) for i, r in enumerate(channels.get("recovery", [])) if r.get("service") == channel["service"]]
            self.channels[(channel["service"], int(channel["id"]))] = ChannelClient(channel, service, recovery, metrics, scale)

    def open(self) -> None:
        for c in self.channels.values():
            c.open()

    def close(self) -> None:
        for c in self.channels.values():
            c.close()
