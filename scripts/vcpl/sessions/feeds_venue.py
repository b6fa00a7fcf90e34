"""The venue side of a multicast feed, derived from the run book only: a publisher per channel
(lines A and B at the run book's groups and ports, each sent on the NIC the platform attaches
for that line) and a server per recovery entry at the run book's endpoint.

The rehearsal (vcpl.sessions.feeds) steers the publisher: drop packets on one line or both,
silence one line or all of them, send heartbeats only. The recovery servers can be told to
refuse the gap currently being rehearsed below a given entry index, so that the client's
fallback to the next rendered entry is exercised too.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
import struct
import subprocess
import threading
import time
from typing import Any

from vcpl.profile import FEED_INTERFACES
from vcpl.sessions import feeds_layers as fl
from vcpl.sessions.site import Site, sandbox_address

log = logging.getLogger("vcpl.sessions.feeds.venue")


def _is_multicast(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_multicast
    except ValueError:
        return False


def venue_address(site: Site, host: str) -> str:
    """Where the run book's host is in the sandbox. The sandbox gives addresses to the hosts the
    overlay RENDERED; a host the rendering lost (a broken overlay) gets its address here, on the
    sandbox loopback, so the venue still listens where the run book says."""
    address = site.hosts.get(host) or sandbox_address(site.venue, site.env, host)
    if not _is_multicast(address) and address not in site.hosts.values() and not address.startswith("127."):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True)
    return address


def multicast_sender(site: Site, line: str) -> socket.socket | None:
    """A UDP socket sending on the NIC of a line, or None when that NIC does not exist here."""
    nic = FEED_INTERFACES[line]
    address = site.interfaces.get(nic)
    if address is None:
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return sock


class Publisher(threading.Thread):
    """Lines A and B of one channel. Identical packets on both lines, firstLine (default a) first."""

    def __init__(self, site: Site, service: dict[str, Any], channel: dict[str, Any], heartbeat_s: float | None, tick: float) -> None:
        super().__init__(daemon=True, name=f"publisher-{channel['id']}")
        self.layer = fl.layer(service["protocol"]["sessionLayer"])
        self.channel = channel
        self.session = b"%010d" % channel["id"]
        self.heartbeat_s = heartbeat_s
        self.tick = tick
        self.first = channel.get("firstLine", "a")
        self.lines = {line: (channel["lines"][line]["group"], int(channel["lines"][line]["port"])) for line in ("a", "b")}
        self.socks = {line: multicast_sender(site, line) for line in ("a", "b")}
        self.lock = threading.Lock()
        self.seq = 0                          # last sequence number published
        self.history: dict[int, bytes] = {}   # seq -> message, for the recovery servers
        # Steering (set by the rehearsal):
        self.mode = "data"                    # data | idle (heartbeats only) | silent
        self.drop: dict[str, int] = {}        # line -> packets still to drop on it
        self.off: set[str] = set()            # lines not publishing at all
        self.sent = {"a": 0, "b": 0}
        self.dropped: dict[str, list[int]] = {"a": [], "b": []}
        self._stop = threading.Event()
        self._last_sent = 0.0

    def run(self) -> None:
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            if self.mode == "data":
                with self.lock:
                    self.seq += 1
                    self.history[self.seq] = fl.message_for(self.seq)
                    seq = self.seq
                self._send(self.layer.encode(seq, [self.history[seq]], self.session, self.channel["id"]), seq)
                self._last_sent = now
            elif self.mode == "idle" and self.heartbeat_s and now - self._last_sent >= self.heartbeat_s:
                self._send(self.layer.encode(self.seq + 1, [], self.session, self.channel["id"]), None)
                self._last_sent = now

    def _send(self, packet: bytes, seq: int | None) -> None:
        for line in (self.first, "b" if self.first == "a" else "a"):
            sock = self.socks[line]
            if sock is None or line in self.off:
                continue
            if seq is not None and self.drop.get(line, 0) > 0:
                self.drop[line] -= 1
                self.dropped[line].append(seq)
                continue
            try:
                sock.sendto(packet, self.lines[line])
                self.sent[line] += 1
            except OSError as exc:
                log.warning("publisher %s line %s: %s", self.channel["id"], line, exc)

    def stop(self) -> None:
        self._stop.set()

    def range(self, seq: int, count: int) -> list[tuple[int, bytes]]:
        with self.lock:
            return [(s, self.history[s]) for s in range(seq, seq + count) if s in self.history]

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            seq = self.seq
        return seq, fl.state_after(seq)


class RecoveryServer:
    """One run-book recovery entry at its endpoint, honouring its limits."""

    def __init__(self, site: Site, service: dict[str, Any], index: int, entry: dict[str, Any],
                 publishers: dict[int, Publisher], scale: float) -> None:
        self.site, self.service, self.index, self.entry = site, service, index, entry
        self.kind = entry["kind"]
        self.publishers = publishers
        self.limits = entry.get("limits", {})
        self.scale = scale
        self.host = venue_address(site, entry["endpoint"]["host"])
        self.port = int(entry["endpoint"]["port"])
        self.requests = 0                 # requests today (requestsPerDay)
        self.answered = 0
        self.refusing = False             # set by the rehearsal: refuse the gap under way
        self.connections = 0
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self.retrans = {line: multicast_sender(site, line) for line in ("a", "b")} if "lines" in entry else {}
        self.peers: list[RecoveryServer] = [self]   # the entries served on this endpoint
        self.primary: RecoveryServer = self
        self.expected_credentials = {f"{service['name']}-{k}": site.credentials.get(f"{service['name']}-{k}")
                                     for k in service["auth"].get("secretKeys", [])} if service["auth"]["method"] != "none" else {}

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        # Entries sharing one TCP endpoint (JPX: replay and snapshot on one port) share its listener.
        if self.primary is not self:
            return
        target = {"udp-rerequest": self._serve_udp, "multicast-snapshot": self._snapshot_loop}.get(self.kind, self._serve_tcp)
        if target == self._serve_tcp:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(8)
            sock.settimeout(0.2)
            self._socks.append(sock)
        elif target == self._serve_udp:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.host, self.port))
            sock.settimeout(0.2)
            self._socks.append(sock)
        threading.Thread(target=target, daemon=True, name=f"recovery-{self.index}").start()

    def stop(self) -> None:
        self._stop.set()
        for s in self._socks:
            s.close()

    # --- limits -------------------------------------------------------------------------------
    def _refusal(self, count: int | None = None) -> str | None:
        self.requests += 1
        if self.refusing:
            return "range not available from this service now (the rehearsal steers the client to the next entry)"
        per_day = self.limits.get("requestsPerDay")
        if per_day is not None and self.requests > per_day:
            return f"more than requestsPerDay={per_day}"
        per_request = self.limits.get("messagesPerRequest")
        if count is not None and per_request is not None and count > per_request:
            return f"{count} messages asked, more than messagesPerRequest={per_request}"
        return None

    # --- udp-rerequest (MoldUDP64 Request Packet, answered by unicast downstream packets) -----
    def _serve_udp(self) -> None:
        sock = self._socks[0]
        size = struct.calcsize(fl.MOLD_REQUEST)
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if len(data) != size:
                continue
            session, seq, count = struct.unpack(fl.MOLD_REQUEST, data)
            if self._refusal(count):
                continue  # MoldUDP64 has no reject: an unanswered request is what the client sees
            pub = next((p for p in self.publishers.values() if p.session == session), None)
            if pub is None:
                continue
            items = pub.range(seq, count)
            for i in range(0, len(items), 20):
                part = items[i:i + 20]
                sock.sendto(pub.layer.encode(part[0][0], [m for _, m in part], pub.session, pub.channel["id"]), peer)
            self.answered += 1

    # --- multicast-snapshot: an unsolicited loop to the endpoint ------------------------------
    def _snapshot_loop(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if _is_multicast(self.host):
            nic = self.site.interfaces.get(FEED_INTERFACES["a"])
            if nic:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(nic))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        while not self._stop.wait(0.1):
            if self.refusing:
                continue
            for pub in self.publishers.values():
                try:
                    sock.sendto(fl.snapshot_datagram(*pub.snapshot()), (self.host, self.port))
                except OSError as exc:
                    log.warning("snapshot loop %s: %s", self.index, exc)
        sock.close()

    # --- TCP services: tcp-replay, tcp-snapshot, multicast-retransmission ----------------------
    def _serve_tcp(self) -> None:
        listener = self._socks[0]
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        self.connections += 1
        try:
            limit = self.limits.get("connectionsPerSession")
            if limit is not None and self.connections > limit:
                fl.send_frame(conn, b"X", {"reason": f"more than connectionsPerSession={limit}"})
                return
            deadline = self.limits.get("loginDeadlineSeconds")
            conn.settimeout(deadline / self.scale if deadline else 5.0)
            frame = fl.recv_frame(conn)
            if frame is None or frame[0] != b"L":
                return
            login = json.loads(frame[1])
            got = login.get("credentials", {})
            wrong = [k for k, v in self.expected_credentials.items() if got.get(k) != v]
            if wrong:
                fl.send_frame(conn, b"X", {"reason": f"login refused: {', '.join(wrong)} missing or wrong"})
                return
            fl.send_frame(conn, b"A", {"login": "accepted"})
            conn.settimeout(5.0)
            served: dict[int, int] = {}
            while (frame := fl.recv_frame(conn)) is not None:
                srv = self._entry_for(frame[0])
                per_conn = srv.limits.get("requestsPerConnection")
                if per_conn is not None and served.get(srv.index, 0) >= per_conn:
                    fl.send_frame(conn, b"X", {"reason": f"more than requestsPerConnection={per_conn}"})
                    return
                served[srv.index] = served.get(srv.index, 0) + 1
                srv._answer(conn, frame)
        except (OSError, ValueError) as exc:
            log.info("recovery %s session: %s", self.index, exc)
        finally:
            self.connections -= 1
            conn.close()

    def _entry_for(self, kind: bytes) -> RecoveryServer:
        wanted = ("tcp-snapshot",) if kind == b"S" else ("tcp-replay", "multicast-retransmission")
        return next((p for p in self.peers if p.kind in wanted), self)

    def _answer(self, conn: socket.socket, frame: tuple[bytes, bytes]) -> None:
        kind, body = frame
        request = json.loads(body or b"{}")
        pub = self.publishers.get(int(request.get("channel", -1)))
        if pub is None:
            fl.send_frame(conn, b"X", {"reason": f"no channel {request.get('channel')!r}"})
            return
        if kind == b"S" and self.kind == "tcp-snapshot":
            reason = self._refusal()
            if reason:
                fl.send_frame(conn, b"X", {"reason": reason})
                return
            seq, state = pub.snapshot()
            fl.send_frame(conn, b"N", {"seq": seq, "state": state})
            fl.send_frame(conn, b"E")
            self.answered += 1
            return
        if kind != b"R" or self.kind not in ("tcp-replay", "multicast-retransmission"):
            fl.send_frame(conn, b"X", {"reason": f"{self.kind} does not answer request type {kind!r}"})
            return
        seq, count = int(request["seq"]), int(request["count"])
        reason = self._refusal(count)
        kept = self.limits.get("messagesKept")
        if reason is None and kept is not None and seq <= pub.seq - kept:
            reason = f"sequence {seq} is older than messagesKept={kept}"
        if reason:
            fl.send_frame(conn, b"X", {"reason": reason})
            return
        items = pub.range(seq, count)
        if self.kind == "tcp-replay":
            for s, m in items:
                fl.send_frame(conn, b"P", pub.layer.encode(s, [m], pub.session, pub.channel["id"]))
            fl.send_frame(conn, b"E")
        else:
            # Retransmissions go out on the run book's retransmission lines, A and B.
            fl.send_frame(conn, b"A", {"messages": len(items)})
            for s, m in items:
                packet = pub.layer.encode(s, [m], pub.session, pub.channel["id"])
                for line, sock in self.retrans.items():
                    spec = self.entry["lines"][line]
                    if sock is not None:
                        sock.sendto(packet, (spec["group"], int(spec["port"])))
        self.answered += 1
