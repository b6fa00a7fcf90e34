"""WebSocket family: rehearse each WebSocket service of a venue×env against its simulator.

Checks, one Finding each per service (see README-websocket.md):
  logon            connect (TLS), handshake (signed where the venue signs), subscribe acknowledged
  heartbeat        the liveness mechanism at the configured interval
  sequence         a lost update (injected by the simulator) is detected and recovered
  reconnect        the primary dies: the client is back (on the backup if there is one) within the plan
  reconnect-storm  no more upgrade attempts than the plan allows, never closer than its interval

The simulator (websocket_sim) knows only the run book, the client (websocket_client) only the
rendered files; the checks compare what each side observed. Long intervals run on a shared scaled
clock (`scale_of`), stated in every timing Finding.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from vcpl.sessions.site import Finding
from vcpl.sessions.websocket_client import Client
from vcpl.sessions.websocket_crypto import make_tls
from vcpl.sessions.websocket_sim import PING_FRAME_VENUES, Simulator, expected_attempts, runbook_endpoints, seconds

if TYPE_CHECKING:
    from vcpl.sessions.sandbox import Context

TOLERANCE = 0.25          # relative tolerance on measured intervals (mean over the window)
SLACK_S = 0.5             # absolute allowance for connect + TLS + subscribe on a loaded machine
LOGON_WAIT_S = 4.0
LONGEST_SCALED_S = 1.0    # the longest run-book timing becomes this long on the scaled clock
SHORTEST_SCALED_S = 0.2   # ... unless that would make the shortest one shorter than this


def scale_of(service: dict[str, Any], runbook: dict[str, Any]) -> float:
    """The shared clock's speed-up, from the run book (never from the rendering under test)."""
    timings = [float(s["intervalSeconds"]) for s in runbook["failover"]["reconnect"]["steps"]]
    if service.get("heartbeat"):
        timings.append(seconds(service["heartbeat"]))
    return max(1.0, min(max(timings) / LONGEST_SCALED_S, min(timings) / SHORTEST_SCALED_S))


def rehearse(ctx: Context, services: list[dict[str, Any]]) -> list[Finding]:
    return asyncio.run(_rehearse_all(ctx, services))


async def _rehearse_all(ctx: Context, services: list[dict[str, Any]]) -> list[Finding]:
    site = ctx.site
    hosts = sorted({str(ep["host"]) for s in services for ep in runbook_endpoints(s, site.env)})
    tls = make_tls(ctx.work / "websocket-tls", hosts)
    findings: list[Finding] = []
    for service in services:
        findings += await _rehearse(ctx, service, tls)
    return findings


class _Run:
    """One service's rehearsal: the simulator, the client and the Findings."""

    def __init__(self, ctx: Context, service: dict[str, Any], sim: Simulator, client: Client, scale: float) -> None:
        self.ctx, self.service, self.sim, self.client, self.scale = ctx, service, sim, client, scale
        self.name = service["name"]
        self.rendered: dict[str, Any] = next((s for s in ctx.site.gateway.get("services", []) if s.get("name") == self.name), {})
        self.findings: list[Finding] = []

    def field(self, suffix: str) -> str:
        return f"gateway.json services[{self.name}].{suffix}" if suffix else f"gateway.json services[{self.name}]"

    def add(self, check: str, field: str, ok: bool, detail: str) -> None:
        self.findings.append(self.ctx.site.finding(self.name, check, field, ok, detail))

    @property
    def clock(self) -> str:
        return f"clock scaled 1/{self.scale:g}" if self.scale != 1 else "real clock"


def _mean_interval(times: list[float]) -> float | None:
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) >= 2 else None


async def _until(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


async def _rehearse(ctx: Context, service: dict[str, Any], tls: Any) -> list[Finding]:
    site = ctx.site
    scale = scale_of(service, site.runbook)
    sim = Simulator(site.venue, site.env, service, site.hosts, scale, tls)
    gateway_path = site.path_of("gateway.json") or "/etc/venue-gateway/gateway/gateway.json"
    client = Client(ctx.root, gateway_path, service["name"], scale, tls[0], ctx.metrics)
    run = _Run(ctx, service, sim, client, scale)
    await sim.start()
    task = asyncio.create_task(client.run())
    try:
        if await _check_logon(run):
            await _check_heartbeat(run)
            await _check_sequence(run)
            await _check_reconnect(run)
        else:
            for check in ("heartbeat", "sequence", "reconnect", "reconnect-storm"):
                failed = run.findings[0]
                run.add(check, failed.field, False, "not rehearsed: the client never logged on (see the logon finding)")
    finally:
        await client.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
    return run.findings


# --- logon -------------------------------------------------------------------------------------------
def _endpoint_field(run: _Run, index: int) -> tuple[str, str] | None:
    """Which rendered endpoint setting disagrees with the venue's, if one does: (field, detail)."""
    venue_eps = runbook_endpoints(run.service, run.ctx.site.env)
    rendered = run.rendered.get("endpoints", [])
    if index >= len(rendered) or index >= len(venue_eps):
        return None
    got, want = rendered[index], venue_eps[index]
    for attr in ("transport", "host", "port", "path"):
        default = "/" if attr == "path" else None
        if str(got.get(attr, default)) != str(want.get(attr, default)):
            return (f"endpoints[{index}].{attr}", f"rendered {got.get(attr)!r}, the venue serves {want.get(attr)!r}")
    return None


async def _check_logon(run: _Run) -> bool:
    c, sim = run.client, run.sim
    ok = await _until(lambda: c.logged_on or c.fatal is not None, LOGON_WAIT_S)
    if c.fatal:
        run.add("logon", run.field(""), False, c.fatal)
        return False
    if ok and c.logged_on:
        (t, d), = c.events("logon")[:1]
        ep = c.endpoints[d["ep"]]
        auth = run.rendered.get("authMethod", "none")
        signed = f", handshake signed ({auth}) and verified by the simulator" if auth != "none" else ""
        run.add("logon", run.field(f"endpoints[{d['ep']}]"), True,
                f"{ep.get('transport')}://{ep['host']}:{ep['port']}{ep.get('path', '')} connected{signed}, "
                f"subscribed to {', '.join(c.dialect.PRODUCTS)} in {1000 * (t - c.log[0][0]):.0f} ms")
        return True
    errors = c.events("connect-failed")
    last = errors[-1][1]["error"] if errors else "no attempt finished"
    sim_saw = sorted({k for _, k, _ in sim.log if k in ("attempt", "bad-path", "auth-reject", "open")})
    diag = _endpoint_field(run, 0)
    if diag:
        field, detail = run.field(diag[0]), diag[1]
    elif run.rendered.get("authMethod", "none") != run.service.get("auth", {}).get("method", "none"):
        field = run.field("authMethod")
        detail = f"rendered {run.rendered.get('authMethod')!r}, the venue expects {run.service.get('auth', {}).get('method')!r}"
    elif sim.events("auth-reject"):
        field = run.field("credentials")
        detail = f"the venue refused the signed handshake: {sim.events('auth-reject')[-1][1]['reason']}"
    else:
        field, detail = run.field("endpoints[0]"), "the rendered endpoint matches the venue's, yet no session"
    unbound = f"; {sim.unbound[0]}" if 0 in sim.unbound else ""
    run.add("logon", field, False, f"{detail}; client: {len(errors)} failed attempts, last: {last}; simulator saw: {sim_saw or 'nothing'}{unbound}")
    return False


# --- heartbeat ---------------------------------------------------------------------------------------
async def _check_heartbeat(run: _Run) -> None:
    c, sim = run.client, run.sim
    venue_hb = run.service.get("heartbeat", {})
    venue_s = seconds(venue_hb) if venue_hb else 1.0
    venue_scaled = venue_s / run.scale
    rendered_hb = run.rendered.get("heartbeat", {})
    window = max(4 * venue_scaled, 1.5)   # at least three intervals between four heartbeats
    t0 = time.monotonic()
    timeouts_before = len(c.events("heartbeat-timeout"))
    await asyncio.sleep(window)
    timeouts = c.events("heartbeat-timeout", since=t0)
    field = run.field("heartbeat.mechanism") if rendered_hb.get("mechanism") != venue_hb.get("mechanism") else run.field("heartbeat.interval")
    rendered_s = c.interval * run.scale
    where = f"(tolerance ±{TOLERANCE:.0%} on the mean, {run.clock}, window {window:.1f} s)"
    if venue_hb.get("mechanism") == "app-ping":
        # Measured on the simulator: the venue expects a ping every run-book interval.
        pings = [t for t, _ in sim.events("ping", since=t0)]
        mean = _mean_interval(pings)
        ok = mean is not None and abs(mean - venue_scaled) <= TOLERANCE * venue_scaled and not timeouts
        got = f"{mean * run.scale:.2f} s" if mean is not None else f"{len(pings)} ping(s)"
        run.add("heartbeat", field, ok,
                f"venue expects an application ping every {venue_s:g} s; simulator measured one every {got} "
                f"(rendered {rendered_hb.get('mechanism')} {rendered_s:g} s); {len(pings)} pings, "
                f"{len(timeouts)} heartbeat timeouts {where}")
        return
    # server-heartbeat: the venue sends at its interval; the client must expect that interval.
    beats = c.events("heartbeat", since=t0)
    first = beats[0][1]["product"] if beats else None
    times = [t for t, d in beats if d["product"] == first]
    mean = _mean_interval(times)
    pong_note = ""
    if sim.venue in PING_FRAME_VENUES:
        sent, answered = len(sim.events("heartbeat-sent", since=t0)), len(sim.events("pong", since=t0))
        pong_note = f"; simulator: {answered} Pong for {sent} Ping frames"
        answered_ok = answered >= sent - 1
    else:
        answered_ok = True
    ok = (mean is not None and abs(mean - c.interval) <= TOLERANCE * c.interval
          and not timeouts and answered_ok and rendered_hb.get("mechanism") == "server-heartbeat")
    got = f"{mean * run.scale:.2f} s" if mean is not None else "none"
    run.add("heartbeat", field, ok,
            f"venue heartbeats every {venue_s:g} s; client received one every {got}, expects {rendered_hb.get('mechanism')} "
            f"every {rendered_s:g} s (gateway.json); {len(timeouts)} heartbeat timeouts (total {timeouts_before + len(timeouts)})"
            f"{pong_note} {where}")


# --- sequence / recovery ---------------------------------------------------------------------------
async def _check_sequence(run: _Run) -> None:
    c, sim = run.client, run.sim
    product = c.dialect.PRODUCTS[0]
    cadence = run.service.get("sequenceReset", {}).get("cadence", "none")
    field = run.field("sequenceReset.cadence")
    t0 = time.monotonic()
    sim.inject_gap(product)
    recovered = await _until(lambda: bool(c.events("recovered", since=t0, product=product)), 2.0 + 4 * sim.tick_interval)
    dropped = sim.events("dropped", since=t0, product=product)
    gaps = c.events("gap", since=t0, product=product)
    resubs = sim.events("subscribe", since=t0, product=product)
    how = "sequence numbers per " + {"per-product": "product", "per-connection": "subscription, from 1 on each connection"}.get(cadence, cadence) \
        if cadence != "none" else "no sequence numbers: book checksum"
    if not dropped:
        run.add("sequence", field, False, f"harness: the simulator did not drop an update of {product}")
        return
    lost = dropped[0][1].get("sequence")
    lost_s = f" (sequence {lost})" if lost else ""
    if gaps and recovered:
        t_gap, t_rec = gaps[0][0], c.events("recovered", since=t0, product=product)[0][0]
        run.add("sequence", field, True,
                f"venue: {how}; one update of {product}{lost_s} lost; client detected it after {1000 * (t_gap - dropped[0][0]):.0f} ms "
                f"({gaps[0][1]['detail']}), resubscribed ({len(resubs)} subscribe at the simulator) and rebuilt from the snapshot "
                f"after {1000 * (t_rec - t_gap):.0f} ms")
    else:
        rendered = run.rendered.get("sequenceReset", {}).get("cadence")
        state = "detected but not recovered" if gaps else "not detected"
        run.add("sequence", field, False,
                f"venue: {how}; one update of {product}{lost_s} lost, {state} by the client (rendered cadence {rendered!r}, "
                f"the venue's {cadence!r}); simulator saw {len(resubs)} resubscribe")


# --- reconnect -------------------------------------------------------------------------------------
async def _check_reconnect(run: _Run) -> None:
    c, sim = run.client, run.sim
    steps = run.ctx.site.runbook["failover"]["reconnect"]["steps"]
    interval = float(steps[0]["intervalSeconds"]) / run.scale
    plan_field = "gateway.json failover.reconnect.steps[0].intervalSeconds"
    eps = runbook_endpoints(run.service, run.ctx.site.env)
    current = c.events("logon")[-1][1]["ep"]
    backup = len(eps) > 1
    # With a backup the primary stays dead; alone, it comes back after 2.5 intervals.
    outage = 3600.0 if backup else 2.5 * interval
    bound = (interval * (1 + TOLERANCE) if backup else outage + interval * (1 + TOLERANCE)) + SLACK_S
    t0 = time.monotonic()
    sim.kill(current, outage)
    back = await _until(lambda: bool(c.events("logon", since=t0)), bound + 2.0)
    logons = c.events("logon", since=t0)
    t_back = logons[0][0] if logons else time.monotonic()
    await asyncio.sleep(max(1.0, 2 * interval))   # a stable session after the reconnect: no churn
    attempts = [t for t, d in sim.events("attempt", since=t0)]
    in_outage = [t for t in attempts if t <= t_back + 0.01]
    after = [t for t in attempts if t > t_back + 0.01]
    target = "the backup" if backup else "the same endpoint"
    expected_ep = 1 if backup else current
    if back and logons[0][1]["ep"] == expected_ep and t_back - t0 <= bound:
        run.add("reconnect", "gateway.json failover.reconnect", True,
                f"primary reset; client back on {target} ({c.endpoints[expected_ep]['host']}) after {t_back - t0:.2f} s "
                f"(venue down {'for good' if backup else f'{outage:.2f} s'}, plan allows {bound:.2f} s, {run.clock}) "
                f"after {len(in_outage)} upgrade attempts")
    else:
        where = f"on endpoint {logons[0][1]['ep']}" if logons else "never"
        diag = _endpoint_field(run, expected_ep) if backup else None
        field = run.field(diag[0]) if diag else (run.field("endpoints") if backup and logons else plan_field)
        run.add("reconnect", field, False,
                f"primary reset; the run book's plan ({steps[0]['attempts']} attempts {steps[0]['intervalSeconds']} s apart) "
                f"brings the client back on {target} within {bound:.2f} s ({run.clock}); it came back {where}"
                f"{f' after {t_back - t0:.2f} s' if logons else ''} with {len(in_outage)} upgrade attempts"
                + (f"; {diag[1]}" if diag else ""))
    gaps = [b - a for a, b in zip(in_outage, in_outage[1:])]
    limit = expected_attempts(min(outage, t_back - t0), interval)
    closest = min(gaps) if gaps else None
    storm = (closest is not None and closest < interval * (1 - TOLERANCE)) or len(in_outage) > limit or bool(after)
    rendered_steps: list[dict[str, Any]] = run.ctx.site.gateway.get("failover", {}).get("reconnect", {}).get("steps", [])
    rendered_iv = rendered_steps[0].get("intervalSeconds") if rendered_steps else None
    detail = f"{len(in_outage)} upgrade attempts during the outage (at most {limit} at one per {steps[0]['intervalSeconds']} s)"
    if closest is not None:
        detail += f", closest {closest * run.scale:.2f} s apart"
    if after:
        detail += f"; {len(after)} more attempts after the client was back (churn)"
    if storm:
        detail += f"; rendered interval {rendered_iv} s, the venue's {steps[0]['intervalSeconds']} s"
    run.add("reconnect-storm", plan_field, not storm, f"{detail} ({run.clock})")
