"""The venues' JSON messages over WebSocket, as far as the rehearsal models them.

The session layer (venues/protocols.yaml `websocket`) only says "the venue's JSON messages"; what a
subscribe, a heartbeat or a sequenced update looks like is the venue's application protocol. Each
dialect has a simulator half (`Sim*`: venue state, answers, updates) and a client half (`Cli*`:
what the reference client sends and how it reads the answers). The dialect is chosen by the run
book's venue id and protocol name (simulator) and by gateway.json's venue and protocol name
(client).

Instruments are rehearsal stand-ins: neither the run book nor gateway.json lists products, so the
client subscribes to the dialect's `PRODUCTS`, which the simulator lists too.
"""
from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vcpl.sessions import websocket_crypto as crypto

Event = tuple[Any, ...]
Note = Callable[..., None]   # note(kind, **data): the simulator's observation log


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(eq=False)   # identity: connections live in sets
class SimConn:
    """One client connection as the simulator sees it."""

    ws: Any
    number: int
    subs: dict[Any, Any] = field(default_factory=dict)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg))


@dataclass
class Credentials:
    """What the client read from /var/run/secrets/venue, by the run book's secret key name suffix."""

    files: dict[str, str]  # file name (<service>-<key>) -> content

    def get(self, suffix: str) -> str | None:
        for name, value in self.files.items():
            if name.endswith(suffix):
                return value.strip()
        return None


# ==================================================================================================
# Coinbase Exchange WebSocket feed (ws-feed): subscribe {type, product_ids, channels}, answer
# "subscriptions"; channel "ticker" carries `sequence` per product (it keeps increasing across
# connections); channel "heartbeat" sends one message per product per interval with the product's
# current sequence. With auth hmac-sha256 the subscribe carries key, passphrase, timestamp, signature.
# ==================================================================================================
class SimCoinbase:
    PRODUCTS = ["BTC-USD", "ETH-USD"]

    def __init__(self, venue: str, env: str, service: dict[str, Any], note: Note) -> None:
        self.note, self.auth = note, service.get("auth", {}).get("method", "none")
        self.secret_keys = {k: crypto_value(venue, env, service["name"], k) for k in service.get("auth", {}).get("secretKeys", [])}
        self.seq = {p: 1000 + 100 * i for i, p in enumerate(self.PRODUCTS)}   # per product, never reset
        self.trade = {p: 1 for p in self.PRODUCTS}

    def check_handshake(self, headers: Any, path: str) -> str | None:
        return None

    async def open(self, conn: SimConn) -> None:
        conn.subs = {}   # product -> set of channels

    def _check_signature(self, msg: dict[str, Any]) -> str | None:
        if self.auth != "hmac-sha256":
            return None
        secret, key, passphrase = (self.secret_keys.get(k) for k in ("api-secret", "api-key", "passphrase"))
        ts = str(msg.get("timestamp", ""))
        if msg.get("key") != key or msg.get("passphrase") != passphrase:
            return "key or passphrase does not match"
        if not ts or abs(time.time() - float(ts)) > 30:
            return f"timestamp {ts!r} is not within 30 s"
        if msg.get("signature") != crypto.coinbase_sign(secret or "", ts):
            return "signature does not verify"
        return None

    async def handle(self, conn: SimConn, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            await conn.send({"type": "error", "message": f"unknown message type {kind!r}"})
            return
        problem = self._check_signature(msg) if kind == "subscribe" else None
        if problem:
            self.note("auth-reject", reason=problem)
            await conn.send({"type": "error", "message": "Authentication Failed", "reason": problem})
            return
        wanted: list[tuple[str, str]] = []
        for ch in msg.get("channels", []):
            name, products = (ch, msg.get("product_ids", [])) if isinstance(ch, str) else (ch.get("name"), ch.get("product_ids", msg.get("product_ids", [])))
            wanted += [(p, name) for p in products]
        bad = [p for p, _ in wanted if p not in self.PRODUCTS]
        if bad:
            await conn.send({"type": "error", "message": "Failed to subscribe", "reason": f"{bad[0]} is not a valid product"})
            return
        for product, channel in wanted:
            chans = conn.subs.setdefault(product, set())
            (chans.add if kind == "subscribe" else chans.discard)(channel)
            self.note(kind, product=product, channel=channel, conn=conn.number)
        by_channel: dict[str, list[str]] = {}
        for product, chans in conn.subs.items():
            for c in sorted(chans):
                by_channel.setdefault(c, []).append(product)
        await conn.send({"type": "subscriptions", "channels": [{"name": c, "product_ids": ps} for c, ps in by_channel.items()]})

    async def tick(self, conns: list[SimConn], drop: str | None) -> None:
        for p in self.PRODUCTS:
            self.seq[p] += 1
            self.trade[p] += 1
            msg = {"type": "ticker", "sequence": self.seq[p], "product_id": p, "price": f"{50000 + self.seq[p] % 97}.00",
                   "trade_id": self.trade[p], "time": _iso()}
            if p == drop:
                self.note("dropped", product=p, sequence=self.seq[p])
                continue
            for c in conns:
                if "ticker" in c.subs.get(p, ()):
                    await c.send(msg)

    async def heartbeat(self, conns: list[SimConn]) -> None:
        for c in conns:
            for p, chans in c.subs.items():
                if "heartbeat" in chans:
                    await c.send({"type": "heartbeat", "sequence": self.seq[p], "last_trade_id": self.trade[p], "product_id": p, "time": _iso()})
                    self.note("heartbeat-sent", product=p, conn=c.number)


class CliCoinbase:
    PRODUCTS = SimCoinbase.PRODUCTS

    def __init__(self, auth_method: str, creds: Credentials) -> None:
        self.auth, self.creds = auth_method, creds

    def headers(self, path: str) -> dict[str, str]:
        return {}

    def _signed(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.auth == "hmac-sha256":
            ts = f"{time.time():.3f}"
            msg |= {"key": self.creds.get("api-key"), "passphrase": self.creds.get("passphrase"), "timestamp": ts,
                    "signature": crypto.coinbase_sign(self.creds.get("api-secret") or "", ts)}
        return msg

    def subscribe(self, products: list[str]) -> list[dict[str, Any]]:
        return [self._signed({"type": "subscribe", "product_ids": products, "channels": ["heartbeat", "ticker"]})]

    def resubscribe(self, product: str) -> list[dict[str, Any]]:
        # The ticker channel re-sends the product's latest state on subscribe: the client rebases on it.
        return [{"type": "unsubscribe", "product_ids": [product], "channels": ["ticker"]},
                self._signed({"type": "subscribe", "product_ids": [product], "channels": ["ticker"]})]

    def ping(self, n: int) -> dict[str, Any] | None:
        return None   # Coinbase has no application ping; liveness is the heartbeat channel

    def parse(self, msg: dict[str, Any]) -> list[Event]:
        kind = msg.get("type")
        if kind == "subscriptions":
            return [("subscribed", p) for ch in msg.get("channels", []) if ch.get("name") == "ticker" for p in ch.get("product_ids", [])]
        if kind == "heartbeat":
            return [("heartbeat", msg.get("product_id"))]
        if kind == "ticker":
            return [("seq", msg.get("product_id"), int(msg.get("sequence", -1)))]
        if kind == "error":
            return [("error", f"{msg.get('message')}: {msg.get('reason', '')}")]
        return []


# ==================================================================================================
# Kraken Spot WebSocket v2: {"method": "subscribe", "params": {"channel": "book", "symbol": [...],
# "depth": 10}, "req_id"}, one acknowledgement per symbol, then a snapshot and updates, each with a
# CRC32 checksum of the top 10 asks and bids (no sequence numbers). Application ping
# {"method": "ping", "req_id"} answered by {"method": "pong", "req_id", "time_in", "time_out"}.
# ==================================================================================================
PRICE_DP, QTY_DP, DEPTH = 1, 8, 10


def kraken_checksum(asks: dict[float, float], bids: dict[float, float]) -> int:
    """Kraken's book checksum: CRC32 over the top 10 asks (ascending) then bids (descending), each
    level as price then quantity with the decimal point removed and leading zeros stripped."""
    def part(levels: list[tuple[float, float]]) -> str:
        return "".join(f"{p:.{PRICE_DP}f}".replace(".", "").lstrip("0") + f"{q:.{QTY_DP}f}".replace(".", "").lstrip("0") for p, q in levels)
    top_asks = sorted(asks.items())[:DEPTH]
    top_bids = sorted(bids.items(), reverse=True)[:DEPTH]
    return zlib.crc32((part(top_asks) + part(top_bids)).encode())


def _levels(side: dict[float, float], reverse: bool) -> list[dict[str, float]]:
    return [{"price": p, "qty": q} for p, q in sorted(side.items(), reverse=reverse)[:DEPTH]]


class SimKraken:
    PRODUCTS = ["BTC/USD", "ETH/USD"]

    def __init__(self, venue: str, env: str, service: dict[str, Any], note: Note) -> None:
        self.note = note
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.step = 0
        for i, s in enumerate(self.PRODUCTS):
            mid = 50000.0 if i == 0 else 3000.0
            self.books[s] = ({round(mid + 0.5 + k, 1): 1.0 + k / 4 for k in range(12)},
                             {round(mid - 0.5 - k, 1): 1.0 + k / 4 for k in range(12)})
        self.conn_ids = 0

    def check_handshake(self, headers: Any, path: str) -> str | None:
        return None

    async def open(self, conn: SimConn) -> None:
        conn.subs = {}
        self.conn_ids += 1
        await conn.send({"channel": "status", "type": "update", "data": [
            {"version": "2.0.0", "system": "online", "api_version": "v2", "connection_id": 1000 + self.conn_ids}]})

    def _snapshot(self, s: str) -> dict[str, Any]:
        asks, bids = self.books[s]
        return {"channel": "book", "type": "snapshot", "data": [{"symbol": s, "bids": _levels(bids, True), "asks": _levels(asks, False),
                                                                 "checksum": kraken_checksum(asks, bids)}]}

    async def handle(self, conn: SimConn, msg: dict[str, Any]) -> None:
        method, req_id = msg.get("method"), msg.get("req_id")
        now = _iso()
        if method == "ping":
            self.note("ping", conn=conn.number)
            await conn.send({"method": "pong", "req_id": req_id, "time_in": now, "time_out": _iso()})
            return
        if method not in ("subscribe", "unsubscribe"):
            await conn.send({"error": f"Unsupported method {method}", "method": method, "success": False, "req_id": req_id, "time_in": now, "time_out": _iso()})
            return
        params = msg.get("params", {})
        if params.get("channel") != "book":
            await conn.send({"error": "Channel(s) not found", "method": method, "success": False, "req_id": req_id, "time_in": now, "time_out": _iso()})
            return
        for s in params.get("symbol", []):
            if s not in self.books:
                await conn.send({"error": f"Currency pair not supported {s}", "method": method, "success": False, "symbol": s, "req_id": req_id, "time_in": now, "time_out": _iso()})
                continue
            self.note(method, product=s, conn=conn.number)
            await conn.send({"method": method, "result": {"channel": "book", "depth": DEPTH, "snapshot": True, "symbol": s},
                             "success": True, "time_in": now, "time_out": _iso(), "req_id": req_id})
            if method == "subscribe":
                conn.subs[s] = True
                await conn.send(self._snapshot(s))
            else:
                conn.subs.pop(s, None)

    async def tick(self, conns: list[SimConn], drop: str | None) -> None:
        self.step += 1
        for s, (asks, bids) in self.books.items():
            # Change the quantity of a level inside the top 10, so a lost update always shows in the checksum.
            side, levels = (asks, sorted(asks)) if self.step % 2 else (bids, sorted(bids, reverse=True))
            price = levels[self.step % 5]
            side[price] = round(0.25 + (self.step % 17) / 8, QTY_DP)
            key = "asks" if side is asks else "bids"
            msg = {"channel": "book", "type": "update", "data": [{"symbol": s, "bids": [], "asks": [], key: [{"price": price, "qty": side[price]}],
                                                                  "checksum": kraken_checksum(asks, bids), "timestamp": _iso()}]}
            if s == drop:
                self.note("dropped", product=s)
                continue
            for c in conns:
                if s in c.subs:
                    await c.send(msg)

    async def heartbeat(self, conns: list[SimConn]) -> None:
        return None   # app-ping: the client pings, the simulator answers (see handle)


class CliKraken:
    PRODUCTS = SimKraken.PRODUCTS

    def __init__(self, auth_method: str, creds: Credentials) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.req = 0

    def headers(self, path: str) -> dict[str, str]:
        return {}

    def _req(self) -> int:
        self.req += 1
        return self.req

    def subscribe(self, products: list[str]) -> list[dict[str, Any]]:
        return [{"method": "subscribe", "params": {"channel": "book", "symbol": products, "depth": DEPTH}, "req_id": self._req()}]

    def resubscribe(self, product: str) -> list[dict[str, Any]]:
        # Kraken's recovery: drop the book, resubscribe, rebuild it from the new snapshot.
        self.books.pop(product, None)
        return [{"method": "unsubscribe", "params": {"channel": "book", "symbol": [product], "depth": DEPTH}, "req_id": self._req()},
                {"method": "subscribe", "params": {"channel": "book", "symbol": [product], "depth": DEPTH}, "req_id": self._req()}]

    def ping(self, n: int) -> dict[str, Any] | None:
        return {"method": "ping", "req_id": n}

    def parse(self, msg: dict[str, Any]) -> list[Event]:
        if msg.get("method") == "pong":
            return [("pong", msg.get("req_id"))]
        if msg.get("method") == "subscribe":
            if msg.get("success"):
                return [("subscribed", msg["result"]["symbol"])]
            return [("error", str(msg.get("error")))]
        if msg.get("channel") == "heartbeat":
            return [("heartbeat", None)]
        if msg.get("channel") != "book":
            return []
        events: list[Event] = []
        for d in msg.get("data", []):
            s = d["symbol"]
            if msg.get("type") == "snapshot":
                self.books[s] = ({}, {})
            elif s not in self.books:
                continue   # an update for a book being rebuilt
            asks, bids = self.books[s]
            for side, levels in ((asks, d.get("asks", [])), (bids, d.get("bids", []))):
                for lv in levels:
                    if float(lv["qty"]) == 0:
                        side.pop(float(lv["price"]), None)
                    else:
                        side[float(lv["price"])] = float(lv["qty"])
            events.append(("checksum", s, kraken_checksum(asks, bids) == int(d["checksum"])))
        return events


# ==================================================================================================
# Kalshi Trade API WebSocket v2: the HTTP upgrade carries KALSHI-ACCESS-KEY, -TIMESTAMP (ms) and
# -SIGNATURE (RSA-PSS-SHA256 over timestamp + "GET" + path); {"id", "cmd": "subscribe", "params":
# {"channels": ["orderbook_delta"], "market_ticker"}} answered {"type": "subscribed", "msg":
# {"channel", "sid"}}; "orderbook_snapshot" then "orderbook_delta" messages with `seq` per
# subscription (sid) from 1 on every connection; the server sends Ping frames ("heartbeat").
# ==================================================================================================
class SimKalshi:
    PRODUCTS = ["KXSIM-26-A", "KXSIM-26-B"]
    MAX_SKEW_S = 30   # how far the signed timestamp may be from the simulator's clock

    def __init__(self, venue: str, env: str, service: dict[str, Any], note: Note) -> None:
        self.note, self.auth = note, service.get("auth", {}).get("method", "none")
        self.key_id = crypto_value(venue, env, service["name"], "api-key-id")
        self.private = crypto_value(venue, env, service["name"], "private-key")
        self.path = ""   # set by the simulator: the run book's path, which the signature covers
        self.sids = 0
        self.book = {p: {50 + k: 100 + k for k in range(5)} for p in self.PRODUCTS}
        self.step = 0

    def check_handshake(self, headers: Any, path: str) -> str | None:
        if self.auth != "rsa-pss":
            return None
        key_id, ts, sig = (headers.get(h) for h in ("KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE"))
        if not (key_id and ts and sig):
            return "KALSHI-ACCESS-KEY, -TIMESTAMP and -SIGNATURE headers are required"
        if key_id != self.key_id:
            return f"unknown KALSHI-ACCESS-KEY {key_id!r}"
        try:
            skew = abs(time.time() - int(ts) / 1000)
        except ValueError:
            return f"KALSHI-ACCESS-TIMESTAMP {ts!r} is not milliseconds"
        if skew > self.MAX_SKEW_S:
            return f"KALSHI-ACCESS-TIMESTAMP is {skew:.0f} s from the venue clock"
        if not crypto.kalshi_verify(crypto.derived_rsa_key(self.private), sig, ts, "GET", self.path):
            return f"KALSHI-ACCESS-SIGNATURE does not verify over timestamp+GET+{self.path}"
        return None

    async def open(self, conn: SimConn) -> None:
        conn.subs = {}   # sid -> [market, seq]

    async def handle(self, conn: SimConn, msg: dict[str, Any]) -> None:
        cmd, mid, params = msg.get("cmd"), msg.get("id"), msg.get("params", {})
        if cmd == "subscribe":
            if "orderbook_delta" not in params.get("channels", []):
                await conn.send({"id": mid, "type": "error", "msg": {"code": 8, "msg": "Unknown channel name"}})
                return
            markets = params.get("market_tickers") or [params.get("market_ticker")]
            if any(m not in self.book for m in markets):
                await conn.send({"id": mid, "type": "error", "msg": {"code": 6, "msg": "Market not found"}})
                return
            for m in markets:
                self.sids += 1
                sid = self.sids
                conn.subs[sid] = [m, 1]
                self.note("subscribe", product=m, conn=conn.number, sid=sid)
                await conn.send({"id": mid, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": sid}})
                await conn.send({"type": "orderbook_snapshot", "sid": sid, "seq": 1,
                                 "msg": {"market_ticker": m, "yes": [[p, q] for p, q in sorted(self.book[m].items())], "no": []}})
        elif cmd == "unsubscribe":
            for sid in params.get("sids", []):
                sub = conn.subs.pop(sid, None)
                if sub:
                    self.note("unsubscribe", product=sub[0], conn=conn.number, sid=sid)
                await conn.send({"id": mid, "type": "unsubscribed", "sid": sid})
        else:
            await conn.send({"id": mid, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}})

    async def tick(self, conns: list[SimConn], drop: str | None) -> None:
        self.step += 1
        for m, levels in self.book.items():
            price = 50 + self.step % 5
            delta = 1 if self.step % 2 else -1
            levels[price] = levels.get(price, 0) + delta
            dropped = m == drop
            if dropped:
                self.note("dropped", product=m)
            for c in conns:
                for sid, sub in c.subs.items():
                    if sub[0] != m:
                        continue
                    sub[1] += 1   # the subscription's sequence advances whether or not the message arrives
                    if not dropped:
                        await c.send({"type": "orderbook_delta", "sid": sid, "seq": sub[1],
                                      "msg": {"market_ticker": m, "price": price, "delta": delta, "side": "yes"}})

    async def heartbeat(self, conns: list[SimConn]) -> None:
        return None   # Ping frames are sent by the simulator's liveness loop (protocol level)


class CliKalshi:
    PRODUCTS = SimKalshi.PRODUCTS

    def __init__(self, auth_method: str, creds: Credentials) -> None:
        self.auth, self.creds = auth_method, creds
        self.ids = 0
        self.pending: dict[int, str] = {}    # command id -> market
        self.sids: dict[int, str] = {}       # sid -> market

    def headers(self, path: str) -> dict[str, str]:
        if self.auth != "rsa-pss":
            return {}
        ts = str(int(time.time() * 1000))
        key = crypto.rsa_key_from_file_content(self.creds.get("private-key") or "")
        return {"KALSHI-ACCESS-KEY": self.creds.get("api-key-id") or "", "KALSHI-ACCESS-TIMESTAMP": ts,
                "KALSHI-ACCESS-SIGNATURE": crypto.kalshi_sign(key, ts, "GET", path)}

    def _cmd(self, cmd: str, params: dict[str, Any], market: str | None = None) -> dict[str, Any]:
        self.ids += 1
        if market:
            self.pending[self.ids] = market
        return {"id": self.ids, "cmd": cmd, "params": params}

    def subscribe(self, products: list[str]) -> list[dict[str, Any]]:
        self.sids.clear()
        # One subscription per market, so a gap on one market is recovered without touching the other.
        return [self._cmd("subscribe", {"channels": ["orderbook_delta"], "market_ticker": m}, m) for m in products]

    def resubscribe(self, product: str) -> list[dict[str, Any]]:
        sids = [sid for sid, m in self.sids.items() if m == product]
        for sid in sids:
            del self.sids[sid]
        return [self._cmd("unsubscribe", {"sids": sids})] + self.subscribe_one(product)

    def subscribe_one(self, product: str) -> list[dict[str, Any]]:
        return [self._cmd("subscribe", {"channels": ["orderbook_delta"], "market_ticker": product}, product)]

    def ping(self, n: int) -> dict[str, Any] | None:
        return None   # the venue pings (protocol Ping frames); the client's library answers with Pong

    def parse(self, msg: dict[str, Any]) -> list[Event]:
        kind = msg.get("type")
        if kind == "subscribed":
            market = self.pending.pop(int(msg.get("id") or 0), None)
            if market:
                self.sids[msg["msg"]["sid"]] = market
                return [("subscribed", market)]
            return []
        if kind in ("orderbook_snapshot", "orderbook_delta"):
            market = self.sids.get(int(msg.get("sid") or 0))
            return [("seq", market, int(msg.get("seq", -1)))] if market else []
        if kind == "error":
            return [("error", str(msg.get("msg")))]
        return []


def crypto_value(venue: str, env: str, service: str, key: str) -> str:
    """The stand-in the simulator expects for a service's secret key (file <service>-<key>)."""
    from vcpl.sessions.site import credential_value
    return credential_value(venue, env, f"{service}-{key}")


# (venue id, protocol name) -> (simulator half, client half)
DIALECTS: dict[tuple[str, str], tuple[type, type]] = {
    ("coinbase", "Exchange WebSocket feed"): (SimCoinbase, CliCoinbase),
    ("kraken", "Spot WebSocket"): (SimKraken, CliKraken),
    ("kalshi", "Trade API WebSocket"): (SimKalshi, CliKalshi),
}
