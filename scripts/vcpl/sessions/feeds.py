"""Rehearse the multicast market-data services ("feed" family) of one venue and environment.

The venue side (feeds_venue) is built from the RUN BOOK: lines A and B of every channel at the
run book's groups and ports, on the NIC the platform attaches for each line
(vcpl.profile.FEED_INTERFACES), and a recovery server per run-book recovery entry at its
endpoint. The reference client (feeds_client) reads only the rendered channels.json and
gateway.json at their mount paths. A scripted scenario then drives the publisher:

  warm-up             both lines publish              -> check "lines"
  one-line loss       packets dropped on line A only  -> check "arbitration" (no gap)
  gap k, per entry    packets dropped on both lines; the venue's entries before k refuse this
                      gap, so rendered entry k must fill it    -> check "recovery" per entry
  idle                heartbeats only (where the run book has a heartbeat)
  silence             nothing on either line          -> check "heartbeat" (stale detected)
  line B off          line A carries on alone         -> check "line-loss"
  end                 the client's book equals the venue's    -> check "delivery"

Timings follow a clock shared by client and simulator and scaled so that the stale threshold
(three heartbeat intervals, or alerts.FEED_STALE_SECONDS without a heartbeat) lasts 0.75 s; the
factor is stated in the heartbeat Finding.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from vcpl.alerts import FEED_STALE_SECONDS
from vcpl.errors import VcplError
from vcpl.profile import FEED_INTERFACES
from vcpl.sessions import feeds_layers as fl
from vcpl.sessions.feeds_client import ChannelClient, FeedClient
from vcpl.sessions.feeds_venue import Publisher, RecoveryServer
from vcpl.sessions.site import Finding, Site

if TYPE_CHECKING:
    from vcpl.sessions.sandbox import Context

STALE_SIM_SECONDS = 0.75    # the stale threshold on the scaled clock
TICK = 0.02                 # one data packet per line every TICK seconds
DROP = 5                    # packets dropped per loss


def _heartbeat_seconds(service: dict[str, Any], env: str) -> float | None:
    hb = service.get("heartbeat")
    if not hb:
        return None
    interval = service["environments"][env].get("heartbeat", hb["default"])
    if not interval:
        return None
    return interval / (1000 if hb.get("unit") == "ms" else 1)


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class _Names:
    """Names the rendered fields that disagree with the run book (for a failed check's field)."""

    def __init__(self, site: Site, service: dict[str, Any]) -> None:
        self.site, self.service = site, service
        rendered = site.channels or {}
        self.channels = {(c.get("service"), c.get("id")): c for c in rendered.get("channels", [])}
        self.recovery = [(i, r) for i, r in enumerate(rendered.get("recovery", [])) if r.get("service") == service["name"]]

    def line(self, channel: dict[str, Any], line: str) -> list[tuple[str, Any, Any]]:
        got = self.channels.get((self.service["name"], channel["id"]), {}).get(line, {})
        want = {**{k: channel["lines"][line][k] for k in ("group", "port")}, "interface": FEED_INTERFACES[line]}
        prefix = f"channels.json channels[{channel['id']}].{line}"
        return [(f"{prefix}.{k}", v, got.get(k)) for k, v in want.items() if str(got.get(k)) != str(v)]

    def recovery_entry(self, index: int, entry: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        if index >= len(self.recovery):
            return [(f"channels.json recovery (entry {index} of {self.service['name']})", entry["kind"], None)]
        at, got = self.recovery[index]
        prefix = f"channels.json recovery[{at}]"
        want: dict[str, Any] = {"kind": entry["kind"], **{k: entry["endpoint"][k] for k in ("host", "port", "transport")}}
        out = [(f"{prefix}.{k}", v, got.get(k)) for k, v in want.items() if str(got.get(k)) != str(v)]
        for k, v in entry.get("limits", {}).items():
            if k != "source" and got.get("limits", {}).get(k) != v:
                out.append((f"{prefix}.limits.{k}", v, got.get("limits", {}).get(k)))
        for line, spec in entry.get("lines", {}).items():
            for k, v in {"group": spec["group"], "port": spec["port"], "interface": FEED_INTERFACES[line]}.items():
                if str(got.get(line, {}).get(k)) != str(v):
                    out.append((f"{prefix}.{line}.{k}", v, got.get(line, {}).get(k)))
        return out

    @staticmethod
    def say(mismatches: list[tuple[str, Any, Any]]) -> str:
        return "; ".join(f"{f}: venue has {want!r}, rendered {got!r}" for f, want, got in mismatches)


def rehearse(ctx: "Context", services: list[dict[str, Any]]) -> list[Finding]:
    site = ctx.site
    findings: list[Finding] = []
    for service in services:
        spec = service["environments"][site.env]
        if not spec.get("channels"):
            continue
        findings += _rehearse_service(ctx, service)
    return findings


def _mount(ctx: "Context", name: str) -> str | None:
    path = ctx.site.path_of(name)
    return str(Path(ctx.root) / path.lstrip("/")) if path else None


def _rehearse_service(ctx: "Context", service: dict[str, Any]) -> list[Finding]:
    site, env, name = ctx.site, ctx.site.env, service["name"]
    spec = service["environments"][env]
    names = _Names(site, service)
    out: list[Finding] = []

    def finding(check: str, field: str, ok: bool, detail: str) -> None:
        out.append(site.finding(name, check, field, ok, detail))

    channels_path, gateway_path = _mount(ctx, "channels.json"), _mount(ctx, "gateway.json")
    if channels_path is None or gateway_path is None:
        finding("lines", "channels.json", False, "the overlay mounts no channels.json (or gateway.json) although the run book lists channels")
        return out
    hb = _heartbeat_seconds(service, env)
    scale = (3 * hb if hb else FEED_STALE_SECONDS) / STALE_SIM_SECONDS
    hb_sim = hb / scale if hb else None

    publishers = {int(c["id"]): Publisher(site, service, c, hb_sim, TICK) for c in spec["channels"]}
    servers = [RecoveryServer(site, service, i, e, publishers, scale) for i, e in enumerate(spec.get("recovery", []))]
    for s in servers:
        shared = next((o for o in servers if o.index < s.index and o.primary is o and s.kind not in SELF_BOUND
                       and o.kind not in SELF_BOUND and (o.host, o.port) == (s.host, s.port)), None)
        if shared is not None:
            s.primary = shared
            shared.peers.append(s)
    try:
        for s in servers:
            s.start()
    except OSError as exc:
        raise VcplError(f"feeds: cannot start a recovery server of {name} at its run-book endpoint: {exc}") from exc
    client = FeedClient(channels_path, gateway_path, ctx.metrics, scale, only_service=name)
    try:
        client.open()
        for p in publishers.values():
            p.start()
        for channel in spec["channels"]:
            cc = client.channels.get((name, int(channel["id"])))
            if cc is None:
                finding("lines", f"channels.json channels[{channel['id']}]", False,
                        f"channel {channel['id']} ({channel['name']}) of the run book is not rendered")
                continue
            out += _scenario(site, name, channel, publishers[int(channel["id"])], servers, cc, names, hb_sim, scale)
    finally:
        for p in publishers.values():
            p.stop()
        for s in servers:
            s.stop()
        client.close()
    return out


def _scenario(site: Site, name: str, channel: dict[str, Any], pub: Publisher, servers: list[RecoveryServer],
              cc: ChannelClient, names: _Names, hb_sim: float | None, scale: float) -> list[Finding]:
    out: list[Finding] = []
    cid = channel["id"]
    where = f"channels.json channels[{cid}]"

    def finding(check: str, field: str, ok: bool, detail: str) -> None:
        out.append(site.finding(name, check, field, ok, detail))

    def events(kind: str, since: float, until: float | None = None) -> list[Any]:
        return [e for e in list(cc.events) if e.kind == kind and e.t >= since and (until is None or e.t <= until)]

    def caught_up() -> bool:
        return cc.next is not None and cc.next > pub.seq and not cc.recovering

    # --- warm-up: both lines ------------------------------------------------------------------
    _wait(lambda: pub.seq >= 15, 3)
    _wait(lambda: all(cc.received.values()), 0.5)
    for line in ("a", "b"):
        spec = channel["lines"][line]
        ok = cc.received[line] > 0
        wrong = names.line(channel, line)
        detail = (f"{cc.received[line]} packets on line {line} ({spec['group']}:{spec['port']} on {FEED_INTERFACES[line]}; venue sent {pub.sent[line]})"
                  if ok else f"nothing received on line {line}; venue publishes {spec['group']}:{spec['port']} on {FEED_INTERFACES[line]}"
                  + (f"; {names.say(wrong)}" if wrong else "") + ("; client: " + "; ".join(cc.errors) if cc.errors else ""))
        finding("lines", wrong[0][0] if wrong and not ok else f"{where}.{line}", ok, detail)
    lines_ok = all(cc.received.values())

    # --- one line loses packets: arbitration fills from the other ------------------------------
    t0 = time.monotonic()
    pub.drop = {"a": DROP}
    _wait(lambda: len(pub.dropped["a"]) >= DROP, 2)
    _wait(lambda: pub.seq >= pub.dropped["a"][-1] + 10 if pub.dropped["a"] else True, 2)
    _wait(caught_up, 1)
    gaps = events("gap", t0)
    dropped = pub.dropped["a"]
    ok = not gaps and cc.next is not None and cc.next > max(dropped or [0])
    finding("arbitration", where if ok or lines_ok else f"{where}.b", ok,
            f"packets {dropped[0]}-{dropped[-1]} dropped on line a only: filled from line b, no gap" if ok else
            f"packets {dropped[:1]}..{dropped[-1:]} dropped on line a only; gaps delivered: {[e.data for e in gaps]}; "
            f"next expected {cc.next}" + (f"; {names.say(names.line(channel, 'b'))}" if names.line(channel, 'b') else ""))

    # --- a real gap per recovery entry -------------------------------------------------------
    for k, server in enumerate(servers):
        entry = server.entry
        for s in servers:
            s.refusing = s.index < k
        t0 = time.monotonic()
        before = len(pub.dropped["b"])
        pub.drop = {"a": DROP, "b": DROP}
        _wait(lambda: len(pub.dropped["b"]) >= before + DROP, 2)
        gap = pub.dropped["b"][before:before + DROP]
        _wait(lambda: bool(events("filled", t0) or events("unfilled", t0)), RECOVERY_BUDGET * (k + 1) + 1.5)
        for s in servers:
            s.refusing = False
        _wait(caught_up, 1.5)
        filled, tried = events("filled", t0), events("attempt-failed", t0)
        ok = bool(filled) and filled[0].data["position"] == k and cc.next is not None and cc.next > gap[-1]
        limits = {k2: v for k2, v in entry.get("limits", {}).items() if k2 != "source"}
        wrong = names.recovery_entry(k, entry)
        if ok:
            f = filled[0].data
            detail = (f"packets {gap[0]}-{gap[-1]} lost on both lines; filled by {entry['kind']} at {entry['endpoint']['host']}:{entry['endpoint']['port']} "
                      f"in {f['seconds']}s (scaled clock: 1 s here = {scale:g} s at the venue)" + (f" within limits {limits}" if limits else "")
                      + (f" after entries {[e.data['position'] for e in tried]} refused as steered" if tried else ""))
        else:
            mine = [e.data for e in tried if e.data["position"] == k]
            detail = (f"packets {gap[0]}-{gap[-1]} lost on both lines; entry {k} ({entry['kind']} at {entry['endpoint']['host']}:{entry['endpoint']['port']}"
                      + (f", limits {limits}" if limits else "") + ") did not fill them"
                      + (f": {mine[0]['why']}" if mine else "")
                      + (f"; filled by entry {filled[0].data['position']} instead" if filled else "")
                      + ("" if events("gap", t0) else "; the client saw no gap (are the lines received?)")
                      + (f"; {names.say(wrong)}" if wrong else ""))
        field = (wrong[0][0] if wrong and not ok else
                 f"channels.json recovery[{names.recovery[k][0]}]" if k < len(names.recovery) else "channels.json recovery")
        finding("recovery", field, ok, detail)

    # --- heartbeats only, then silence ---------------------------------------------------------
    hb_field = f"gateway.json services[{name}].heartbeat.interval"
    late = ""
    idle_ok = True
    if hb_sim:
        _wait(caught_up, 1)
        pub.mode = "idle"
        time.sleep(0.05)
        t0 = time.monotonic()
        cc.max_silence = {"a": 0.0, "b": 0.0}
        time.sleep(4 * hb_sim + 0.2)
        downs = events("line-down", t0)
        rendered_hb = cc.heartbeat or 0
        slow = {l: round(v, 3) for l, v in cc.max_silence.items() if rendered_hb and v > 2 * rendered_hb}
        idle_ok = not downs and not slow
        late = (f"; during {4 * hb_sim + 0.2:.2f}s of heartbeats only, lines went down: {[e.data for e in downs]}" if downs else "") + \
               (f"; heartbeats {slow}s apart, rendered interval {rendered_hb:.3f}s (scaled)" if slow else "")
    pub.mode = "silent"
    t0 = time.monotonic()
    stale_ok = _wait(lambda: bool(events("stale", t0)), cc.line_timeout + 0.6)
    stale_after = (events("stale", t0)[0].t - t0) if stale_ok else None
    pub.mode = "data"
    back = _wait(lambda: all(cc.up.values()), 1)
    ok = idle_ok and stale_ok and back
    basis = (f"venue heartbeat every {hb_sim * scale:g}s" if hb_sim
             else f"no heartbeat in the run book: stale after FEED_STALE_SECONDS={FEED_STALE_SECONDS}s")
    finding("heartbeat", hb_field if hb_sim else f"gateway.json services[{name}].heartbeat", ok,
            f"{basis}; clock scaled x{1 / scale:.4g} (1 s here = {scale:g} s at the venue); "
            + ("heartbeats kept both lines up; " if hb_sim and idle_ok else "")
            + (f"silence detected as stale after {stale_after:.2f}s (threshold {cc.line_timeout:.2f}s)" if stale_ok else
               f"silence of {cc.line_timeout + 0.6:.2f}s not detected as stale (threshold {cc.line_timeout:.2f}s)")
            + late + ("" if back else "; lines did not come back up after the silence"))

    # --- line B off: A carries the channel -----------------------------------------------------
    _wait(caught_up, 1)
    t0 = time.monotonic()
    pub.off = {"b"}
    down_b = _wait(lambda: bool([e for e in events("line-down", t0) if e.data["line"] == "b"]), cc.line_timeout + 0.6)
    time.sleep(0.2)
    pub.off = set()
    t1 = time.monotonic()
    up_b = _wait(lambda: cc.up["b"], 1)
    downs_a = [e for e in events("line-down", t0, t1) if e.data["line"] == "a"]
    gaps = events("gap", t0)
    ok = down_b and up_b and not downs_a and not gaps
    finding("line-loss", f"{where}.b" if ok or not lines_ok else where, ok,
            ("line b silent: marked down, vcpl_feed_line_up{line=\"b\"}=0, channel kept from line a without gaps, b up again when it came back" if ok else
             f"line b silent: down detected={down_b}, line a went down={bool(downs_a)}, gaps={[e.data for e in gaps]}, b up again={up_b}"))

    # --- the book ------------------------------------------------------------------------------
    pub.mode = "silent"
    _wait(caught_up, 1.5)
    want = fl.state_after(pub.seq)
    ok = cc.next == pub.seq + 1 and cc.state == want
    unfilled = [e.data for e in cc.events if e.kind == "unfilled"]
    finding("delivery", where, ok,
            f"{pub.seq} messages published; client book {'equals' if cc.state == want else 'differs from'} the venue's after {None if cc.next is None else cc.next - 1}"
            + (f"; gaps left unfilled: {unfilled}" if unfilled else ""))
    return out


SELF_BOUND = ("udp-rerequest", "multicast-snapshot")   # not TCP listeners
RECOVERY_BUDGET = 1.0   # seconds allowed per recovery entry tried for one gap (client timeout 0.8 s)
