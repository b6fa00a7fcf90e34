"""Packet headers of the multicast session layers, and the framing of the simulated recovery
services, shared by the feed simulator (venue side) and the reference client.

Only MoldUDP64 is the venue's real byte layout (Nasdaq MoldUDP64 1.00: 10-byte session, 8-byte
sequence of the first message, 2-byte message count, then 2-byte-length-prefixed messages).
For the other layers the header is the REGISTRY'S MODEL of the layer (venues/protocols.yaml
`framing` and `sequencing`): it carries the fields the registry names, at the widths and byte
order given here, which follow the venues' published layouts as far as we know them but are not
claimed to be byte-exact. Messages after the header are always modelled as a 2-byte length
(in the layer's byte order) followed by the message bytes.

Sequencing model for every layer: a packet carries the sequence number of its first message and
covers [seq, seq + count). A packet with no message is a heartbeat; it carries the next sequence
number (as MoldUDP64 heartbeats do) and consumes none.
"""
from __future__ import annotations

import json
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable

from vcpl.errors import VcplError


@dataclass(frozen=True)
class Packet:
    seq: int
    messages: list[bytes]
    session: bytes = b""


@dataclass(frozen=True)
class Layer:
    """One session layer's header: struct format and how to fill / read it."""

    name: str
    header: str                                       # struct format of the header
    exact: bool                                       # True only where the byte layout is the venue's own
    fill: Callable[[int, int, int, bytes, int], tuple[Any, ...]]   # (seq, count, size, session, channel) -> fields
    seq_of: Callable[[tuple[Any, ...]], int]
    session_of: Callable[[tuple[Any, ...]], bytes] = lambda f: b""

    @property
    def order(self) -> str:
        return self.header[0]

    def encode(self, seq: int, messages: list[bytes], session: bytes = b"", channel: int = 0) -> bytes:
        body = b"".join(struct.pack(self.order + "H", len(m)) + m for m in messages)
        size = struct.calcsize(self.header) + len(body)
        return struct.pack(self.header, *self.fill(seq, len(messages), size, session, channel)) + body

    def decode(self, data: bytes) -> Packet:
        width = struct.calcsize(self.header)
        if len(data) < width:
            raise ValueError(f"{self.name}: packet of {len(data)} bytes is shorter than its {width}-byte header")
        fields = struct.unpack_from(self.header, data)
        messages, at = [], width
        while at + 2 <= len(data):
            (length,) = struct.unpack_from(self.order + "H", data, at)
            messages.append(bytes(data[at + 2:at + 2 + length]))
            at += 2 + length
        return Packet(self.seq_of(fields), messages, self.session_of(fields))


def _now_ns() -> int:
    return time.time_ns()


LAYERS: dict[str, Layer] = {
    # Real: session (10 ASCII), sequence (u64), count (u16), big-endian.
    "moldudp64": Layer("moldudp64", ">10sQH", True,
                       lambda seq, n, size, ses, ch: (ses, seq, n), lambda f: f[1], lambda f: f[0]),
    # Model of CME MDP 3.0: MsgSeqNum (u32), SendingTime (u64 ns), little-endian.
    "mdp-packet": Layer("mdp-packet", "<IQ", False, lambda seq, n, size, ses, ch: (seq, _now_ns()), lambda f: f[0]),
    # Model of NYSE XDP: PktSize, DeliveryFlag, NumberMsgs, SeqNum, SendTime s, SendTime ns.
    "xdp-packet": Layer("xdp-packet", "<HBBIII", False,
                        lambda seq, n, size, ses, ch: (size, 1 if n else 11, n, seq, int(time.time()), time.time_ns() % 10**9), lambda f: f[3]),
    # Model of the Cboe Sequenced Unit Header: length, count, unit, sequence.
    "pitch-sequenced-unit": Layer("pitch-sequenced-unit", "<HBBI", False,
                                  lambda seq, n, size, ses, ch: (size, n, ch % 256, seq), lambda f: f[3]),
    # Model of the ICE iMpact block header: session number, sequence number, message count, big-endian.
    "impact-packet": Layer("impact-packet", ">HIH", False, lambda seq, n, size, ses, ch: (ch % 65536, seq, n), lambda f: f[1]),
    # Model of the Optiq MDG packet header: Packet Time, Packet Sequence Number, Packet Flags, Channel ID.
    "optiq-mdg-packet": Layer("optiq-mdg-packet", "<QIHH", False,
                              lambda seq, n, size, ses, ch: (_now_ns(), seq, 0, ch % 65536), lambda f: f[1]),
    # Model of the B3 UMDF packet header: ChannelID, reserved, SequenceVersion, SequenceNumber, SendingTime.
    "b3-umdf-packet": Layer("b3-umdf-packet", "<BBHIQ", False,
                            lambda seq, n, size, ses, ch: (ch % 256, 0, 1, seq, _now_ns()), lambda f: f[3]),
    # Model of the HKEX OMD-C packet header: PktSize, MsgCount, filler, SeqNum, SendTime.
    "omd-packet": Layer("omd-packet", "<HBBIQ", False,
                        lambda seq, n, size, ses, ch: (size, n, 0, seq, _now_ns()), lambda f: f[3]),
    # Model of the 26-byte TSE FLEX header: multicast group (3 ASCII), reboots, sequence, issue code
    # (12), update number, utility flag, message count; the widths are this model's, not TSE's.
    "flex-packet": Layer("flex-packet", ">3sBI12sIBB", False,
                         lambda seq, n, size, ses, ch: (b"%03d" % (ch % 1000), 0, seq, b" " * 12, 0, 0, n), lambda f: f[2]),
}


def layer(name: str) -> Layer:
    if name not in LAYERS:
        raise VcplError(f"feeds: no packet model for session layer {name!r} (add it to vcpl.sessions.feeds_layers.LAYERS)")
    return LAYERS[name]


# --- the market-data content: a value per message, a "book" that is their sum -----------------
def message_for(seq: int) -> bytes:
    """The simulated message with sequence number seq: 'M' and an 8-byte value."""
    return b"M" + struct.pack(">Q", value_of_seq(seq))


def value_of_seq(seq: int) -> int:
    return (seq * 2654435761) % 2**32


def value_of(message: bytes) -> int:
    return struct.unpack(">Q", message[1:9])[0] if len(message) >= 9 else 0


def state_after(seq: int) -> int:
    """The book after applying messages 1..seq (what a snapshot carries)."""
    return sum(value_of_seq(s) for s in range(1, seq + 1)) % 2**64


# --- MoldUDP64 re-request (real layout) ------------------------------------------------------
MOLD_REQUEST = ">10sQH"


# --- the simulated TCP recovery protocol (a model, not any venue's bytes) ---------------------
# Frame: 4-byte big-endian length of what follows, 1-byte type, payload.
# L login {service, credentials}   A accepted {..}      X rejected {reason}
# R range request {channel, seq, count}                 S snapshot request {channel}
# P one layer packet (raw bytes)   N snapshot {seq, state}   E end of answer
def send_frame(sock: socket.socket, kind: bytes, payload: bytes | dict[str, Any] = b"") -> None:
    data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    sock.sendall(struct.pack(">I", len(data) + 1) + kind + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = b""
    while len(chunks) < n:
        part = sock.recv(n - len(chunks))
        if not part:
            return None
        chunks += part
    return chunks


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    body = _recv_exact(sock, length)
    if body is None or not body:
        return None
    return body[:1], body[1:]


def snapshot_datagram(seq: int, state: int) -> bytes:
    """One packet of the simulated multicast snapshot loop (a model)."""
    return b"SNAP" + struct.pack(">QQ", seq, state)


def parse_snapshot_datagram(data: bytes) -> tuple[int, int] | None:
    if len(data) != 20 or not data.startswith(b"SNAP"):
        return None
    seq, state = struct.unpack(">QQ", data[4:])
    return seq, state
