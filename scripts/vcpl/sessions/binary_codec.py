"""Wire codecs of the binary session layers (vcpl.sessions.binary).

Each codec turns the session messages the rehearsal needs into bytes and back, on both sides:
client -> venue: login (and negotiate, for FIXP), heartbeat, test-response, app, logout;
venue -> client: negotiated, accept, reject, heartbeat, test-request, app, logout.

How close each one is to the venue's bytes (the README-binary.md says the same):
- SoupBinTCP 3.0: the real packet layout (2-byte big-endian length, type, fixed ASCII fields).
- FIXP (CME iLink 3): Simple Open Framing Header and SBE header as published, session templates
  500-507 with the field order of the public iLink 3 schema as we remember it; not checked against
  the current ilinkbinary.xml, so offsets may differ. Application messages are a stand-in template.
- FIXP (B3): SOFH with 0xEB50 and the B3 template ids 1-9 with the fields we know; var-data
  lengths and optional fields are not byte-exact.
- BOE, Optiq OEG, OCG-C, arrowhead: the registry's model of the layer (venues/protocols.yaml), not
  the venue's byte layout: header shapes follow the registry text, bodies carry only the fields the
  rehearsal checks.

Credential stand-ins (`credential_value`) are longer than some fixed-width fields (SoupBinTCP
username 6, password 10): `fit` puts the first N hex digits of the value's SHA-256 there on both
sides, so a wrong credential file still fails.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import struct
import time
from typing import Any

Msg = tuple[str, dict[str, Any]]


class Closed(Exception):
    """The peer closed the connection (or it broke)."""


class Conn:
    """A TCP socket with a read buffer: read exactly n bytes, or time out."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def read_exact(self, n: int, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self.buf) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout as exc:
                raise TimeoutError from exc
            except OSError as exc:
                raise Closed(str(exc)) from exc
            if not chunk:
                raise Closed("eof")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def has_data(self) -> bool:
        return bool(self.buf)

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise Closed(str(exc)) from exc

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def fit(value: str, width: int) -> str:
    """A credential or identifier for a fixed-width field (see the module doc)."""
    return value if len(value) <= width else hashlib.sha256(value.encode()).hexdigest()[:width]


def _alpha(value: str, width: int) -> bytes:
    return value.encode("latin-1")[:width].ljust(width, b" ")


def _char(value: str, width: int) -> bytes:
    """SBE char[n]: NUL-padded."""
    return value.encode("latin-1")[:width].ljust(width, b"\0")


def _str(raw: bytes) -> str:
    return raw.rstrip(b"\0 ").decode("latin-1")


class Codec:
    layer = ""
    title = ""
    fidelity = ""                 # what the README and Finding details say about the bytes
    negotiates = False            # a negotiate step precedes the login (FIXP)
    test_request = False          # the venue can probe with a TestRequest the client answers
    claim = "inbound"             # the login carries the client's next expected inbound (or its next outbound) number
    implicit_seq = False          # venue app messages carry no number (SoupBinTCP)

    # identity key -> the rendered setting it comes from (for Finding.field)
    FIELDS: dict[str, str] = {"username": "credentials", "password": "credentials", "sub_id": "credentials", "access_key": "credentials",
                              "HMACSignature": "credentials", "session_id": "session.sessionId", "firm": "session.firmId",
                              "access_id": "session.logicalAccessId", "partition": "session.oePartitionId",
                              "comp_id": "session.compID", "virtual_server": "session.virtualServer"}

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        """The login's identity fields from session values and credentials (by run-book key)."""
        raise NotImplementedError

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        """One message sent by `side` ("client" or "venue")."""
        raise NotImplementedError

    def verify(self, login: dict[str, Any], expected: dict[str, Any]) -> list[str]:
        """Identity fields of a decoded login that differ from what the venue expects."""
        wrong = []
        for key, want in expected.items():
            if key.startswith("_"):
                continue
            if login.get(key) != want:
                wrong.append(f"{key} {login.get(key)!r} (expected {want!r})")
        return wrong


# --- SoupBinTCP 3.0 -----------------------------------------------------------------------------
class SoupBin(Codec):
    layer = "soupbintcp"
    title = "SoupBinTCP 3.0"
    fidelity = "SoupBinTCP 3.0 packet layout (byte-exact)"
    implicit_seq = True

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        user = creds.get("username") or str(session.get("user") or session.get("username") or "")
        return {"username": fit(user, 6), "password": fit(creds.get("password", ""), 10), "session": ""}

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        if side == "client":
            body = {
                "login": lambda: b"L" + _alpha(f["username"], 6) + _alpha(f["password"], 10) + _alpha(f.get("session", ""), 10) + str(f["claim"]).rjust(20).encode(),
                "heartbeat": lambda: b"R",
                "app": lambda: b"U" + f.get("payload", b"O"),
                "logout": lambda: b"O",
            }[kind]()
        else:
            body = {
                "accept": lambda: b"A" + _alpha(f.get("session", "1"), 10) + str(f["next_seq"]).rjust(20).encode(),
                "reject": lambda: b"J" + f.get("code", "A").encode()[:1],
                "heartbeat": lambda: b"H",
                "app": lambda: b"S" + f.get("payload", b"A"),
                "logout": lambda: b"Z",
            }[kind]()
        return struct.pack(">H", len(body)) + body

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        (length,) = struct.unpack(">H", conn.read_exact(2, timeout))
        body = conn.read_exact(length, 5.0)
        t, p = body[:1], body[1:]
        if side == "client":
            if t == b"L":
                return "login", {"username": _str(p[0:6]), "password": _str(p[6:16]), "session": _str(p[16:26]), "claim": int(p[26:46].strip() or b"0")}
            return {b"R": "heartbeat", b"U": "app", b"O": "logout"}.get(t, "unknown"), {}
        if t == b"A":
            return "accept", {"session": _str(p[0:10]), "next_seq": int(p[10:30].strip() or b"0")}
        if t == b"J":
            return "reject", {"code": p[:1].decode(), "reason": {"A": "not authorized", "S": "session not available"}.get(p[:1].decode(), p[:1].decode())}
        return {b"H": "heartbeat", b"S": "app", b"Z": "logout", b"+": "debug"}.get(t, "unknown"), {"seq": None}


# --- FIXP: CME iLink 3 ---------------------------------------------------------------------------
class Sbe:
    """Simple Open Framing Header + SBE message header helpers."""

    def __init__(self, sofh_fmt: str, encoding: int, schema: int, version: int):
        self.sofh_fmt, self.encoding, self.schema, self.version = sofh_fmt, encoding, schema, version
        self.sofh_len = struct.calcsize(sofh_fmt)

    def frame(self, template: int, block: bytes, var: bytes = b"") -> bytes:
        header = struct.pack("<HHHH", len(block), template, self.schema, self.version)
        payload = header + block + var
        return struct.pack(self.sofh_fmt, self.sofh_len + len(payload), self.encoding) + payload

    def read(self, conn: Conn, timeout: float | None) -> tuple[int, bytes, bytes]:
        length, encoding = struct.unpack(self.sofh_fmt, conn.read_exact(self.sofh_len, timeout))
        if encoding != self.encoding:
            raise Closed(f"encoding type 0x{encoding:04X}, expected 0x{self.encoding:04X}")
        payload = conn.read_exact(length - self.sofh_len, 5.0)
        block_len, template, _schema, _version = struct.unpack("<HHHH", payload[:8])
        return template, payload[8:8 + block_len], payload[8 + block_len:]


APP_TEMPLATE = 9000   # stand-in application message (SeqNum, UUID): not a venue template


class Fixp(Codec):
    layer = "fixp"
    title = "FIXP (CME iLink 3)"
    fidelity = ("SOFH (4 bytes, big-endian length, 0xCAFE) and SBE header as published; Negotiate 500 .. Terminate 507 "
                "with iLink 3's session fields in their published order, from memory (not checked against ilinkbinary.xml); "
                "HMAC-SHA256 over the canonical request; application messages are a stand-in template 9000")
    negotiates = True
    claim = "outbound"
    sbe = Sbe(">IH", 0xCAFE, 8, 8)
    TSN, TSV, TSVENDOR = "vcpl-reference-client", "1", "vcpl"

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        return {"access_key": fit(creds.get("access-key-id", ""), 20), "session_id": str(session.get("sessionId", ""))[:3],
                "firm": str(session.get("firmId", ""))[:5], "_secret": creds.get("secret-key", "")}

    @staticmethod
    def _sign(secret: str, *parts: Any) -> bytes:
        return hmac.new(secret.encode(), "\n".join(str(p) for p in parts).encode(), hashlib.sha256).digest()

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        ts = f.get("ts", time.time_ns())
        uuid = f.get("uuid", 0)
        if side == "client":
            if kind == "negotiate":
                sig = self._sign(f["_secret"], ts, uuid, f["session_id"], f["firm"])
                block = sig + _char(f["access_key"], 20) + struct.pack("<QQ", uuid, ts) + _char(f["session_id"], 3) + _char(f["firm"], 5)
                return self.sbe.frame(500, block, struct.pack("<H", 0))
            if kind == "login":
                hb = min(f["hb_ms"], 0xFFFF)     # KeepAliveInterval is a uInt16: a larger rendering is cut to 65535
                sig = self._sign(f["_secret"], ts, uuid, f["session_id"], f["firm"], self.TSN, self.TSV, self.TSVENDOR, f["claim"], hb)
                block = (sig + _char(f["access_key"], 20) + _char(self.TSN, 30) + _char(self.TSV, 10) + _char(self.TSVENDOR, 10)
                         + struct.pack("<QQI", uuid, ts, f["claim"]) + _char(f["session_id"], 3) + _char(f["firm"], 5) + struct.pack("<H", hb))
                return self.sbe.frame(503, block, struct.pack("<H", 0))
            if kind == "heartbeat":
                return self.sbe.frame(506, struct.pack("<QIBB", uuid, f.get("next_seq", 0), 0, int(f.get("lapsed", False))))
            if kind == "app":
                return self.sbe.frame(APP_TEMPLATE, struct.pack("<IQ", f["seq"], uuid))
            if kind == "logout":
                return self.sbe.frame(507, _char(f.get("reason", "logout"), 48) + struct.pack("<QQHB", uuid, ts, f.get("code", 0), 0))
        else:
            if kind == "negotiated":
                return self.sbe.frame(501, struct.pack("<QQHBBIQ", uuid, ts, 0xFFFF, 255, 255, f.get("previous_seq", 0), f.get("previous_uuid", 0)))
            if kind == "reject" and f.get("step") == "negotiate":
                return self.sbe.frame(502, _char(f.get("reason", ""), 48) + struct.pack("<QQHBB", uuid, ts, f.get("code", 0), 255, 255))
            if kind == "reject":
                return self.sbe.frame(505, _char(f.get("reason", ""), 48) + struct.pack("<QQIHBB", uuid, ts, f.get("next_seq", 0), f.get("code", 0), 255, 255))
            if kind == "accept":
                return self.sbe.frame(504, struct.pack("<QQIIQHHBB", uuid, ts, f["next_seq"], f.get("previous_seq", 0), f.get("previous_uuid", 0), f["hb_ms"], 0xFFFF, 255, 255))
            if kind == "heartbeat":
                return self.sbe.frame(506, struct.pack("<QIBB", uuid, f.get("next_seq", 0), 255, int(f.get("lapsed", False))))
            if kind == "app":
                return self.sbe.frame(APP_TEMPLATE, struct.pack("<IQ", f["seq"], uuid))
            if kind == "logout":
                return self.sbe.frame(507, _char(f.get("reason", ""), 48) + struct.pack("<QQHB", uuid, ts, f.get("code", 0), 0))
        raise ValueError(f"{self.layer}: cannot encode {side} {kind}")

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        template, b, _var = self.sbe.read(conn, timeout)
        if template == 500:
            uuid, ts = struct.unpack("<QQ", b[52:68])
            return "negotiate", {"hmac": b[:32], "access_key": _str(b[32:52]), "uuid": uuid, "ts": ts, "session_id": _str(b[68:71]), "firm": _str(b[71:76])}
        if template == 503:
            uuid, ts, nxt = struct.unpack("<QQI", b[102:122])
            (hb,) = struct.unpack("<H", b[130:132])
            return "login", {"hmac": b[:32], "access_key": _str(b[32:52]), "tsn": _str(b[52:82]), "tsv": _str(b[82:92]), "tsvendor": _str(b[92:102]),
                             "uuid": uuid, "ts": ts, "claim": nxt, "session_id": _str(b[122:125]), "firm": _str(b[125:130]), "hb_ms": hb}
        if template == 501:
            uuid, ts, _exp, _fti, _split, prev_seq, prev_uuid = struct.unpack("<QQHBBIQ", b[:32])
            return "negotiated", {"uuid": uuid, "previous_seq": prev_seq, "previous_uuid": prev_uuid}
        if template in (502, 505):
            return "reject", {"reason": _str(b[:48]), "step": "negotiate" if template == 502 else "login"}
        if template == 504:
            uuid, ts, nxt, prev_seq, prev_uuid, hb = struct.unpack("<QQIIQH", b[:34])
            return "accept", {"uuid": uuid, "next_seq": nxt, "previous_seq": prev_seq, "hb_ms": hb}
        if template == 506:
            uuid, nxt, _fti, lapsed = struct.unpack("<QIBB", b[:14])
            return "heartbeat", {"uuid": uuid, "next_seq": nxt, "lapsed": bool(lapsed)}
        if template == 507:
            return "logout", {"reason": _str(b[:48])}
        if template == APP_TEMPLATE:
            seq, uuid = struct.unpack("<IQ", b[:12])
            return "app", {"seq": seq, "uuid": uuid}
        return "unknown", {"template": template}

    def verify(self, login: dict[str, Any], expected: dict[str, Any]) -> list[str]:
        wrong = super().verify(login, expected)
        if "hmac" in login and not wrong:
            if login["kind"] == "negotiate":
                want = self._sign(expected["_secret"], login["ts"], login["uuid"], login["session_id"], login["firm"])
            else:
                want = self._sign(expected["_secret"], login["ts"], login["uuid"], login["session_id"], login["firm"],
                                  login["tsn"], login["tsv"], login["tsvendor"], login["claim"], login["hb_ms"])
            if not hmac.compare_digest(want, login["hmac"]):
                wrong.append("HMACSignature (signed with a different secret key)")
        return wrong


# --- FIXP: B3 Binary EntryPoint ----------------------------------------------------------------
class FixpB3(Codec):
    layer = "fixp-b3"
    title = "FIXP (B3 Binary EntryPoint)"
    fidelity = ("SOFH with a 2-byte little-endian length and 0xEB50, SBE header, templates Negotiate 1 .. Sequence 9 with the "
                "session fields we know (sessionID, sessionVerID, timestamps, keepAliveInterval, nextSeqNo); var-data lengths "
                "(1 byte here), optional fields and reject codes are not byte-exact; application messages are a stand-in template 9000")
    negotiates = True
    claim = "outbound"
    sbe = Sbe("<HH", 0xEB50, 1, 8)

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        return {"session_id": int(session.get("sessionId") or 0), "firm": int(session.get("enteringFirm") or 0),
                "access_key": creds.get("access-key", "")}

    @staticmethod
    def _var(*values: str) -> bytes:
        return b"".join(struct.pack("<B", len(v.encode()[:255])) + v.encode()[:255] for v in values)

    @staticmethod
    def _unvar(raw: bytes) -> list[str]:
        out, i = [], 0
        while i < len(raw):
            n = raw[i]
            out.append(raw[i + 1:i + 1 + n].decode("latin-1"))
            i += 1 + n
        return out

    def _creds(self, f: dict[str, Any]) -> str:
        return json.dumps({"auth_type": "basic", "username": str(f["session_id"]), "access_key": f["access_key"]})

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        ts, ver, sid = f.get("ts", time.time_ns()), f.get("uuid", 0), f.get("session_id", 0)
        if side == "client":
            if kind == "negotiate":
                return self.sbe.frame(1, struct.pack("<IQQII", sid, ver, ts, f["firm"], 0), self._var(self._creds(f), "", "vcpl-reference-client", "1"))
            if kind == "login":
                return self.sbe.frame(4, struct.pack("<IQQQIBQ", sid, ver, ts, f["hb_ms"], f["claim"], 0, 0), self._var(self._creds(f)))
            if kind == "heartbeat":
                return self.sbe.frame(9, struct.pack("<I", f.get("next_seq", 0)))
            if kind == "app":
                return self.sbe.frame(APP_TEMPLATE, struct.pack("<IQ", f["seq"], ver))
            if kind == "logout":
                return self.sbe.frame(7, struct.pack("<IQB", sid, ver, f.get("code", 1)))
        else:
            if kind == "negotiated":
                return self.sbe.frame(2, struct.pack("<IQQI", sid, ver, ts, f.get("firm", 0)))
            if kind == "reject" and f.get("step") == "negotiate":
                return self.sbe.frame(3, struct.pack("<IQQIB", sid, ver, ts, f.get("firm", 0), f.get("code", 1)), self._var(f.get("reason", "")))
            if kind == "reject":
                return self.sbe.frame(6, struct.pack("<IQQBI", sid, ver, ts, f.get("code", 1), f.get("next_seq", 0)), self._var(f.get("reason", "")))
            if kind == "accept":
                return self.sbe.frame(5, struct.pack("<IQQQII", sid, ver, ts, f["hb_ms"], f["next_seq"], f.get("last_incoming", 0)))
            if kind == "heartbeat":
                return self.sbe.frame(9, struct.pack("<I", f.get("next_seq", 0)))
            if kind == "app":
                return self.sbe.frame(APP_TEMPLATE, struct.pack("<IQ", f["seq"], ver))
            if kind == "logout":
                return self.sbe.frame(7, struct.pack("<IQB", sid, ver, f.get("code", 1)), self._var(f.get("reason", "")))
        raise ValueError(f"{self.layer}: cannot encode {side} {kind}")

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        template, b, var = self.sbe.read(conn, timeout)
        if template == 1:
            sid, ver, ts, firm, _ob = struct.unpack("<IQQII", b[:28])
            cred = json.loads((self._unvar(var) or ["{}"])[0] or "{}")
            return "negotiate", {"session_id": sid, "uuid": ver, "ts": ts, "firm": firm, "access_key": cred.get("access_key", ""), "username": cred.get("username")}
        if template == 4:
            sid, ver, ts, hb, nxt, _cod, _win = struct.unpack("<IQQQIBQ", b[:41])
            cred = json.loads((self._unvar(var) or ["{}"])[0] or "{}")
            return "login", {"session_id": sid, "uuid": ver, "ts": ts, "hb_ms": hb, "claim": nxt, "access_key": cred.get("access_key", "")}
        if template == 2:
            sid, ver, _ts, _firm = struct.unpack("<IQQI", b[:28])
            return "negotiated", {"uuid": ver}
        if template in (3, 6):
            return "reject", {"reason": (self._unvar(var) or [""])[0], "step": "negotiate" if template == 3 else "login"}
        if template == 5:
            sid, ver, _ts, hb, nxt, last_in = struct.unpack("<IQQQII", b[:40])
            return "accept", {"uuid": ver, "hb_ms": hb, "next_seq": nxt, "last_incoming": last_in}
        if template == 9:
            return "heartbeat", {"next_seq": struct.unpack("<I", b[:4])[0]}
        if template == 7:
            return "logout", {"reason": (self._unvar(var) or [""])[0] if var else ""}
        if template == APP_TEMPLATE:
            seq, ver = struct.unpack("<IQ", b[:12])
            return "app", {"seq": seq}
        return "unknown", {"template": template}

    def verify(self, login: dict[str, Any], expected: dict[str, Any]) -> list[str]:
        wanted = dict(expected)
        if login.get("kind") == "login":
            wanted.pop("firm", None)     # Establish carries no enteringFirm
        return super().verify(login, wanted)


# --- Cboe BOE (registry model) -------------------------------------------------------------------
class Boe(Codec):
    layer = "boe-session"
    title = "Cboe BOE session"
    fidelity = ("the registry's model of the layer, not the venue's byte layout: 0xBABA start of message, 2-byte length, "
                "message type, matching unit and sequence number as the registry says; Login Request 0x37 / Login Response 0x24 "
                "with SessionSubID, Username, Password and one Unit Sequences group; heartbeats 0x03/0x09, Logout 0x08")
    UNIT = 1

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        return {"sub_id": fit(creds.get("session-sub-id", ""), 4), "username": fit(creds.get("username", ""), 4), "password": fit(creds.get("password", ""), 10)}

    def _msg(self, mtype: int, seq: int, body: bytes) -> bytes:
        rest = struct.pack("<BBI", mtype, self.UNIT, seq) + body
        return b"\xba\xba" + struct.pack("<H", len(rest) + 2) + rest

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        seq = f.get("seq", 0)
        if side == "client":
            if kind == "login":
                group = struct.pack("<BBBBI", 0x80, 0, 1, self.UNIT, max(f["claim"] - 1, 0))   # last received per unit
                body = _alpha(f["sub_id"], 4) + _alpha(f["username"], 4) + _alpha(f["password"], 10) + b"\x01" + struct.pack("<H", len(group) + 2) + group
                return self._msg(0x37, 0, body)
            return self._msg({"heartbeat": 0x03, "logout": 0x02, "app": 0x38}[kind], seq, b"")
        if kind in ("accept", "reject"):
            status = b"A" if kind == "accept" else f.get("code", "N").encode()[:1]
            last = max(f.get("next_seq", 1) - 1, 0)
            body = status + _alpha(f.get("reason", ""), 60) + b"\x00" + struct.pack("<IBBI", last, 1, self.UNIT, last)
            return self._msg(0x24, 0, body)
        if kind == "logout":
            return self._msg(0x08, 0, b"U" + _alpha(f.get("reason", ""), 60) + struct.pack("<IB", 0, 0))
        return self._msg({"heartbeat": 0x09, "app": 0x25}[kind], seq, b"")

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        start = conn.read_exact(2, timeout)
        if start != b"\xba\xba":
            raise Closed(f"start of message {start!r}, expected 0xBABA")
        (length,) = struct.unpack("<H", conn.read_exact(2, 5.0))
        rest = conn.read_exact(length - 2, 5.0)
        mtype, _unit, seq = struct.unpack("<BBI", rest[:6])
        b = rest[6:]
        if side == "client":
            if mtype == 0x37:
                last = struct.unpack("<I", b[25:29])[0] if len(b) >= 29 else 0
                return "login", {"sub_id": _str(b[0:4]), "username": _str(b[4:8]), "password": _str(b[8:18]), "claim": last + 1}
            return {0x03: "heartbeat", 0x02: "logout", 0x38: "app"}.get(mtype, "unknown"), {"seq": seq}
        if mtype == 0x24:
            status = b[:1].decode()
            last = struct.unpack("<I", b[62:66])[0]
            if status == "A":
                return "accept", {"next_seq": last + 1}
            return "reject", {"code": status, "reason": _str(b[1:61])}
        return {0x09: "heartbeat", 0x08: "logout", 0x25: "app", 0x13: "replay-complete"}.get(mtype, "unknown"), {"seq": seq}


# --- Euronext Optiq OEG (registry model) -----------------------------------------------------------
class OptiqOeg(Codec):
    layer = "optiq-oeg"
    title = "Euronext Optiq OEG SBE session"
    fidelity = ("the registry's model of the layer, not the venue's byte layout: 2-byte Frame (length including Frame and SBE "
                "header) and 8-byte SBE header as the registry says; template ids Logon 100, LogonAck 101, LogonReject 102, "
                "Logout 103, Heartbeat 106, TestRequest 107 and the Logon fields (Logical Access ID, OE Partition ID, last "
                "sequence number received) are our model")
    test_request = True
    schema = 0

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        return {"access_id": int(session.get("logicalAccessId") or 0), "partition": int(session.get("oePartitionId") or 0)}

    def _msg(self, template: int, block: bytes) -> bytes:
        payload = struct.pack("<HHHH", len(block), template, self.schema, 1) + block
        return struct.pack("<H", len(payload) + 2) + payload

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        if side == "client" and kind == "login":
            return self._msg(100, struct.pack("<IHI", f["access_id"], f["partition"], max(f["claim"] - 1, 0)) + _char("vcpl", 8) + b"\x01")
        if kind == "accept":
            return self._msg(101, _char(f.get("exchange", ""), 8) + struct.pack("<I", max(f.get("last_in", 0), 0)))
        if kind == "reject":
            return self._msg(102, struct.pack("<BI", f.get("code", 1), 0) + _char(f.get("reason", ""), 40))
        if kind == "logout":
            return self._msg(103, struct.pack("<B", f.get("code", 0)))
        if kind == "heartbeat":
            return self._msg(106, struct.pack("<I", f.get("test_id", 0)))
        if kind == "test-request":
            return self._msg(107, struct.pack("<I", f["test_id"]))
        if kind == "app":
            return self._msg(APP_TEMPLATE, struct.pack("<I", f["seq"]))
        raise ValueError(f"{self.layer}: cannot encode {side} {kind}")

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        (frame,) = struct.unpack("<H", conn.read_exact(2, timeout))
        payload = conn.read_exact(frame - 2, 5.0)
        block_len, template, _s, _v = struct.unpack("<HHHH", payload[:8])
        b = payload[8:8 + block_len]
        if template == 100:
            access, part, last = struct.unpack("<IHI", b[:10])
            return "login", {"access_id": access, "partition": part, "claim": last + 1}
        if template == 101:
            return "accept", {"exchange": _str(b[:8])}
        if template == 102:
            return "reject", {"reason": _str(b[5:45])}
        if template == 103:
            return "logout", {}
        if template == 106:
            return "heartbeat", {"test_id": struct.unpack("<I", b[:4])[0]}
        if template == 107:
            return "test-request", {"test_id": struct.unpack("<I", b[:4])[0]}
        if template == APP_TEMPLATE:
            return "app", {"seq": struct.unpack("<I", b[:4])[0]}
        return "unknown", {"template": template}


# --- HKEX OCG-C (registry model) ---------------------------------------------------------------------
def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for byte in data:
        c = _CRC32C[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Ocg(Codec):
    layer = "ocg-session"
    title = "HKEX OCG-C binary session"
    fidelity = ("the registry's model of the layer, not the venue's byte layout: STX, 2-byte length, MsgType, sequence number, "
                "PossDup/PossResend, Comp ID and a presence map, CRC32C trailer as the registry says; message type numbers "
                "and bodies are our model; the password is not RSA-encrypted (a SHA-256 of public key and password stands in); "
                "the Lookup Service answers with one assigned trading gateway (not a primary/secondary pair)")
    test_request = True
    HEARTBEAT, TEST_REQUEST, LOGOUT, LOGON, LOGON_RESPONSE, LOOKUP_REQUEST, LOOKUP_RESPONSE, APP = 0, 1, 5, 10, 11, 6, 7, 100

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        secret = hashlib.sha256(f"{creds.get('hkex-rsa-public-key', '')}:{creds.get('password', '')}".encode()).hexdigest()
        return {"comp_id": fit(str(session.get("compID", "")), 16), "password": secret}

    def _msg(self, mtype: int, seq: int, comp: str, body: bytes) -> bytes:
        head = struct.pack("<BHBIBB", 0x02, 0, mtype, seq, 0, 0) + _char(comp, 16) + struct.pack("<I", 0xFFFFFFFF if body else 0)
        data = head + body
        data = data[:1] + struct.pack("<H", len(data) + 4) + data[3:]
        return data + struct.pack("<I", crc32c(data))

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        comp, seq = f.get("comp_id", ""), f.get("seq", 0)
        if kind == "login":
            return self._msg(self.LOGON, 1, comp, _char(f["password"], 64) + struct.pack("<I", f["claim"]))
        if kind == "lookup":
            return self._msg(self.LOOKUP_REQUEST, 1, comp, b"")
        if kind == "lookup-response":
            return self._msg(self.LOOKUP_RESPONSE, 1, comp, socket.inet_aton(f["address"]) + struct.pack("<H", f["port"]))
        if kind in ("accept", "reject"):
            return self._msg(self.LOGON_RESPONSE, 1, comp, struct.pack("<IB", f.get("next_seq", 0), 0 if kind == "accept" else 1) + _char(f.get("reason", ""), 75))
        if kind == "logout":
            return self._msg(self.LOGOUT, seq, comp, _char(f.get("reason", ""), 75))
        if kind == "heartbeat":
            return self._msg(self.HEARTBEAT, seq, comp, struct.pack("<I", f.get("test_id", 0)))
        if kind == "test-request":
            return self._msg(self.TEST_REQUEST, seq, comp, struct.pack("<I", f["test_id"]))
        if kind == "app":
            return self._msg(self.APP, seq, comp, b"")
        raise ValueError(f"{self.layer}: cannot encode {side} {kind}")

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        stx = conn.read_exact(1, timeout)
        if stx != b"\x02":
            raise Closed(f"start byte {stx!r}, expected STX")
        (length,) = struct.unpack("<H", conn.read_exact(2, 5.0))
        rest = conn.read_exact(length - 3, 5.0)
        data = stx + struct.pack("<H", length) + rest
        if crc32c(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
            raise Closed("CRC32C trailer does not match")
        mtype, seq, _pd, _pr = struct.unpack("<BIBB", data[3:10])
        comp = _str(data[10:26])
        b = data[30:-4]
        if mtype == self.LOGON:
            return "login", {"comp_id": comp, "password": _str(b[:64]), "claim": struct.unpack("<I", b[64:68])[0]}
        if mtype == self.LOOKUP_REQUEST:
            return "lookup", {"comp_id": comp}
        if mtype == self.LOOKUP_RESPONSE:
            return "lookup-response", {"address": socket.inet_ntoa(b[:4]), "port": struct.unpack("<H", b[4:6])[0]}
        if mtype == self.LOGON_RESPONSE:
            nxt, status = struct.unpack("<IB", b[:5])
            return ("accept", {"next_seq": nxt}) if status == 0 else ("reject", {"reason": _str(b[5:80])})
        if mtype == self.LOGOUT:
            return "logout", {"reason": _str(b[:75])}
        if mtype == self.HEARTBEAT:
            return "heartbeat", {"seq": seq, "test_id": struct.unpack("<I", b[:4])[0]}
        if mtype == self.TEST_REQUEST:
            return "test-request", {"seq": seq, "test_id": struct.unpack("<I", b[:4])[0]}
        if mtype == self.APP:
            return "app", {"seq": seq}
        return "unknown", {"type": mtype}


# --- TSE arrowhead (registry placeholder) ---------------------------------------------------------
class Arrowhead(Codec):
    layer = "arrowhead-session"
    title = "TSE arrowhead order-entry session (placeholder)"
    fidelity = ("the registry's placeholder for a layer whose specification is not public: our own framing (2-byte big-endian "
                "length, type, 4-byte sequence number), a Login with the virtual server, the password and the next expected "
                "sequence number; nothing here is the arrowhead byte layout")

    def identity(self, session: dict[str, Any], creds: dict[str, str]) -> dict[str, Any]:
        return {"virtual_server": str(session.get("virtualServer", ""))[:16], "password": fit(creds.get("password", ""), 16)}

    def _msg(self, mtype: bytes, seq: int, body: bytes = b"") -> bytes:
        rest = mtype + struct.pack(">I", seq) + body
        return struct.pack(">H", len(rest)) + rest

    def encode(self, side: str, kind: str, f: dict[str, Any]) -> bytes:
        seq = f.get("seq", 0)
        if kind == "login":
            return self._msg(b"L", 0, _alpha(f["virtual_server"], 16) + _alpha(f["password"], 16) + struct.pack(">I", f["claim"]))
        if kind == "accept":
            return self._msg(b"A", 0, struct.pack(">I", f["next_seq"]))
        if kind == "reject":
            return self._msg(b"J", 0, _alpha(f.get("reason", ""), 40))
        return self._msg({"heartbeat": b"H", "logout": b"O", "app": b"D"}[kind], seq)

    def read(self, conn: Conn, side: str, timeout: float | None) -> Msg:
        (length,) = struct.unpack(">H", conn.read_exact(2, timeout))
        rest = conn.read_exact(length, 5.0)
        t, (seq,), b = rest[:1], struct.unpack(">I", rest[1:5]), rest[5:]
        if t == b"L":
            return "login", {"virtual_server": _str(b[:16]), "password": _str(b[16:32]), "claim": struct.unpack(">I", b[32:36])[0]}
        if t == b"A":
            return "accept", {"next_seq": struct.unpack(">I", b[:4])[0]}
        if t == b"J":
            return "reject", {"reason": _str(b[:40])}
        return {b"H": "heartbeat", b"O": "logout", b"D": "app"}.get(t, "unknown"), {"seq": seq}


CODECS: dict[str, type[Codec]] = {c.layer: c for c in (SoupBin, Fixp, FixpB3, Boe, OptiqOeg, Ocg, Arrowhead)}


def codec(layer: str) -> Codec:
    return CODECS[layer]()
