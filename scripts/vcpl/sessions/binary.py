"""Binary order-entry sessions (SoupBinTCP, FIXP, BOE, Optiq OEG, OCG-C, arrowhead): rehearse
each service of the family against its simulator (vcpl.sessions.binary_venue, from the run book)
with the reference client (vcpl.sessions.binary_client, from the rendered files).

Checks, one Finding each per service: logon, heartbeat, liveness, failover-order, sequence,
reconnect-policy, restart. See README-binary.md for what is and is not simulated.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcpl.errors import VcplError
from vcpl.sessions import binary_plan
from vcpl.sessions.binary_client import STATE_DIR, Client
from vcpl.sessions.binary_codec import CODECS, codec as make_codec
from vcpl.sessions.binary_venue import Venue
from vcpl.sessions.site import Finding

if TYPE_CHECKING:
    from vcpl.sessions.sandbox import Context

# Scaled seconds a run-book interval becomes (at most). Not shorter: with several sandboxes on
# 2 CPUs a thread can be late by a few hundred milliseconds, and an order or timing check must
# not depend on that.
HB_TARGET = 0.8          # a heartbeat interval
RECONNECT_TARGET = 0.6   # the shortest reconnect interval
HB_TOLERANCE = 0.25      # measured mean heartbeat gap within +-25 % of the run book's interval
SPACING_TOLERANCE = 0.7  # reconnect attempts at least 70 % of the interval apart (minus 30 ms)


def _wait(pred: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def scale_for(service: dict[str, Any], reconnect: dict[str, Any]) -> float:
    """The clock factor: a run-book heartbeat becomes <= HB_TARGET s, the shortest reconnect
    interval <= RECONNECT_TARGET s, whichever needs less scaling (never below 1)."""
    factors = []
    hb = service.get("heartbeat")
    if hb and hb.get("default"):
        seconds = float(hb["default"]) / (1000.0 if hb.get("unit") == "ms" else 1.0)
        factors.append(seconds / HB_TARGET)
    intervals = [float(s.get("intervalSeconds", 1)) for s in reconnect.get("steps", [])]
    if intervals:
        factors.append(min(intervals) / RECONNECT_TARGET)
    return max(1.0, min(factors) if factors else 1.0)


class Rehearsal:
    def __init__(self, ctx: Context, service: dict[str, Any]):
        self.ctx, self.site, self.service = ctx, ctx.site, service
        self.name = service["name"]
        self.layer = str(service["protocol"]["sessionLayer"])
        self.codec = make_codec(self.layer)
        self.reconnect = self.site.runbook["failover"]["reconnect"]
        self.scale = scale_for(service, self.reconnect)
        self.gw_path = self.site.path_of("gateway.json")
        self.rendered = next((s for s in self.site.gateway.get("services", []) if s.get("name") == self.name), None)
        self.findings: list[Finding] = []
        self.venue = Venue(self.site, service, self.codec, self.scale)
        self.roles = [e.role for e in self.venue.endpoints]
        self.client: Client | None = None

    # --- helpers -----------------------------------------------------------------------------------
    def add(self, check: str, field: str, ok: bool, detail: str) -> None:
        self.findings.append(self.site.finding(self.name, check, field, ok, detail))

    def svc_field(self, rest: str) -> str:
        return f"gateway.json services[{self.name}].{rest}"

    @property
    def clock(self) -> str:
        return f"clock scaled x{self.scale:g}"

    def new_client(self) -> Client:
        assert self.gw_path
        self.client = Client(self.gw_path, self.name, self.codec, self.scale, self.ctx.metrics)
        return self.client

    def plan(self, dead: set[str]) -> tuple[list[binary_plan.Attempt], bool, binary_plan.Attempt | None]:
        """The run book's attempts after a loss, up to the first live endpoint (or the plan's end)."""
        attempts, ends = binary_plan.attempts(self.reconnect, self.roles, limit=200)
        taken: list[binary_plan.Attempt] = []
        for a in attempts:
            taken.append(a)
            if a.role not in dead:
                return taken, ends, a
        return taken, ends, None

    def quiesce(self) -> bool:
        """Let the client finish the first messages of a new session, let messages in flight arrive
        and the client write what it has to its state file, before a connection is cut or the pod
        killed, so the venue knows exactly what the client has (a harness wait: the numbers claimed
        are still only checked at the venue)."""
        c = self.client
        if c is None:
            return True

        def settled() -> bool:
            if c.opening or not (c.state.get("next_in") == self.venue.server_next and self.venue.client_next == c.state.get("next_out")):
                return False
            saved = c.saved()
            return saved.get("next_in") == c.state.get("next_in") and saved.get("next_out") == c.state.get("next_out") \
                and saved.get("role") == c.state.get("role")
        # Generous: with 2 CPUs shared by several sandboxes a message can take a while to be handled.
        return _wait(settled, 5.0)

    def metric(self, name: str) -> float:
        return self.ctx.metrics.value(name, service=self.name) or 0.0

    def endpoint_field(self, role: str) -> str:
        rendered = [e.get("role") for e in (self.rendered or {}).get("endpoints", [])]
        index = rendered.index(role) if role in rendered else 0
        return self.svc_field(f"endpoints[{index}]")

    # --- the scenario -----------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        if self.rendered is None:
            self.add("logon", f"gateway.json services[{self.name}]", False, "the service is not rendered in gateway.json")
            return self.findings
        if not self.gw_path:
            raise VcplError(f"{self.site.venue} {self.site.env}: no gateway.json mount")
        self.venue.start()
        try:
            self.check_logon()
            if self.venue.current is None:
                return self.findings
            self.check_heartbeat()
            self.check_liveness()
            self.check_failover()
            self.check_restart()
            self.check_storm()
        finally:
            if self.client:
                self.client.kill()
            self.venue.stop()
        return self.findings

    def check_logon(self) -> None:
        client = self.new_client()
        plan, _ends, _ = self.plan(set())
        # A client that follows the rendered order logs on at once; allow a full plan for one that does not.
        timeout = 2.0 + binary_plan.duration(binary_plan.attempts(self.reconnect, self.roles, 12)[0]) / self.scale
        client.start()
        ok = _wait(lambda: self.venue.current is not None, timeout)
        accepted = [lg for lg in self.venue.logons if lg.accepted]
        first = self.venue.attempts[0] if self.venue.attempts else None
        fidelity = f"{self.codec.title}: {self.codec.fidelity}"
        if ok and accepted:
            rejects = [lg for lg in self.venue.logons if not lg.accepted]
            self.add("logon", self.svc_field("session"), True,
                     f"logged on to {accepted[0].role} {self._where(accepted[0].role)}" + (f" after {len(rejects)} reject(s)" if rejects else "") + f" ({fidelity})")
        else:
            wrong = [w for lg in self.venue.logons for w in lg.identity_wrong]
            reasons = sorted({lg.reason for lg in self.venue.logons if not lg.accepted})
            field = self.svc_field("endpoints")
            if wrong:
                key = wrong[0].split(" ")[0].split(":")[-1].strip()
                field = self.svc_field(self.codec.FIELDS.get(key, "session"))
            elif any("KeepAliveInterval" in r for r in reasons):
                field = self.svc_field("heartbeat.interval")
            detail = "; ".join(reasons) or ("no connection reached the simulator" if not self.venue.attempts else "no login arrived")
            self.add("logon", field, False, f"no logon within {timeout:.1f} s: {detail} ({fidelity})")
        if first is None:
            self.add("failover-order", self.svc_field("endpoints[0]"), False, "the client made no attempt")
        elif first[1] != self.roles[0]:
            self.add("failover-order", self.svc_field("endpoints[0]"), False,
                     f"first attempt went to the {first[1]} endpoint {self._where(first[1])}; the run book's order starts with {self.roles[0]} {self._where(self.roles[0])}")
        else:
            self.order_ok = True

    def _where(self, role: str) -> str:
        ep = next(e for e in self.venue.endpoints if e.role == role)
        return f"{ep.host}:{ep.port}"

    def check_heartbeat(self) -> None:
        field = self.svc_field("heartbeat.interval")
        rendered_hb = (self.rendered or {}).get("heartbeat")
        if self.venue.hb_seconds is None:
            self.add("heartbeat", self.svc_field("heartbeat"), False,
                     f"the run book gives no services[{self.name}].heartbeat for {self.layer} (registry: "
                     f"{'keepalive' if self.codec.negotiates else 'session-heartbeat'}); the simulator cannot check an interval"
                     + ("" if rendered_hb else " and gateway.json renders none, so the gateway would never send one"))
            return
        expected = self.venue.hb_interval or 0.0
        record = self.venue.current
        if record is None:
            self.add("heartbeat", field, False, "no session to measure")
            return
        start = time.monotonic() + expected * 0.5     # let the logon burst pass
        time.sleep(expected * 4.5)
        times = [t for t, kind, f in list(record.rx) if t >= start and kind == "heartbeat" and not f.get("lapsed")]
        gaps = [b - a for a, b in zip(times, times[1:])]
        unit = self.venue.hb_unit
        announced = next((lg.hb_ms for lg in reversed(self.venue.logons) if lg.accepted and lg.hb_ms is not None), None)
        want = f"{self.venue.hb_value:g} {unit}"
        if announced is not None and announced != int(self.venue.hb_value or 0) and unit == "ms":
            self.add("heartbeat", field, False, f"login announced KeepAliveInterval {announced} ms; the run book says {want}")
            return
        if not gaps:
            self.add("heartbeat", field, False,
                     f"fewer than two client heartbeats in {expected * 4:.2f} s (scaled; run book interval {want}, {self.clock})")
            return
        mean = sum(gaps) / len(gaps)
        ok = abs(mean - expected) <= HB_TOLERANCE * expected
        self.add("heartbeat", field, ok,
                 f"client heartbeat every {mean * self.scale:.2f} s (mean of {len(gaps)} gaps, unscaled), run book {want} "
                 f"+-{HB_TOLERANCE:.0%} ({self.clock})")

    def check_liveness(self) -> None:
        field = self.svc_field("heartbeat.interval")
        record = self.venue.current
        if record is None:
            self.add("liveness", field, False, "no session to probe")
            return
        if self.codec.test_request:
            test_id = 4242
            sent = time.monotonic()
            self.venue.send_test_request(test_id)
            limit = max(self.venue.hb_interval or 0.0, 1.0)
            ok = _wait(lambda: any(k == "heartbeat" and f.get("test_id") == test_id for _t, k, f in list(record.rx)), limit)
            self.add("liveness", "TestRequest", ok,
                     f"TestRequest {test_id} answered by a Heartbeat in {time.monotonic() - sent:.2f} s" if ok
                     else f"TestRequest {test_id} not answered within {limit:.2f} s")
            return
        interval = self.venue.hb_interval
        client_hb = self.client.hb_seconds if self.client else None
        if not interval or not client_hb:
            self.add("liveness", self.svc_field("heartbeat"), False,
                     f"{self.layer} has no TestRequest and no heartbeat interval is "
                     + ("in the run book" if not interval else "rendered") + ": a silent venue would go unnoticed")
            return
        before = self.metric("vcpl_session_heartbeat_timeouts_total")
        self.venue.silence(True)
        t0 = time.monotonic()
        dropped = _wait(lambda: record.ended is not None, interval * 6)
        after = self.metric("vcpl_session_heartbeat_timeouts_total")
        took = (record.ended or time.monotonic()) - t0
        reconnected = _wait(lambda: self.venue.current is not None and self.venue.current is not record, 3.0)
        ok = dropped and after > before and interval * 0.9 <= took <= interval * 4.5
        self.add("liveness", field, ok,
                 f"venue stopped its heartbeats: the client {'gave up after ' + format(took / interval, '.1f') + ' intervals' if dropped else 'kept the session'}"
                 f" (expected 1-4.5), heartbeat timeouts {before:g} -> {after:g}, {'logged on again' if reconnected else 'did not log on again'} ({self.clock})")

    def _hop(self, dead: set[str], active_role: str) -> dict[str, Any]:
        """Kill the active session with `dead` endpoints down; see where and when the client goes."""
        self.quiesce()
        expected, ends, target = self.plan(dead)
        states = {r: ("down" if r in dead else "standby") for r in self.roles}
        revive = None
        if target is None and active_role in dead:
            # The plan never reaches a live endpoint (a single endpoint, or one the plan does not
            # name): the same endpoint comes back after its first attempt.
            revive = active_role
        if target is not None:
            states[target.role] = "active"
        self.venue.set_states(states)
        policy = self.venue.move_to(target.role if target else active_role, active_role)
        mark = len(self.venue.attempts)
        logons = len(self.venue.logons)
        self.venue.kill_session()
        t0 = time.monotonic()
        if revive:
            _wait(lambda: len(self.venue.attempts) > mark, 3.0 + binary_plan.duration(expected[:2]) / self.scale)
            self.venue.set_states({revive: "active"})
            expected = expected[:1] + [binary_plan.Attempt(expected[0].index, revive, expected[1].wait if len(expected) > 1 else 0)]
        budget = 1.5 * binary_plan.duration(expected) / self.scale + 2.0
        ok = _wait(lambda: any(lg.accepted for lg in self.venue.logons[logons:]), budget)
        observed = self.venue.attempts[mark:]
        logon = next((lg for lg in self.venue.logons[logons:] if lg.accepted), None)
        return {"expected": expected, "observed": observed, "logon": logon if ok else None, "t0": t0,
                "target": target.role if target else revive, "policy": policy}

    def _compare(self, hop: dict[str, Any]) -> tuple[bool, str, str]:
        expected, observed = hop["expected"], hop["observed"]
        upto = next((i for i, (_t, _r, state) in enumerate(observed) if state == "active"), len(observed) - 1)
        observed = observed[:upto + 1]
        exp_roles = [a.role for a in expected]
        obs_roles = [r for _t, r, _s in observed]
        if obs_roles != exp_roles[:len(obs_roles)] or not hop["logon"]:
            i = next((i for i, (a, b) in enumerate(zip(obs_roles, exp_roles)) if a != b), None)
            field = self.endpoint_field(exp_roles[i]) if i is not None else "gateway.json failover.reconnect"
            return False, field, (f"attempts went to {obs_roles or 'nothing'}; the run book's plan gives {exp_roles}"
                                  + ("" if hop["logon"] else ", and no logon followed") + self._trace(hop))
        times = [hop["t0"]] + [t for t, _r, _s in observed]
        for k, a in enumerate(expected[:len(observed)]):
            gap = times[k + 1] - times[k]
            need = a.wait / self.scale
            if k and gap < need * SPACING_TOLERANCE - 0.03:
                return False, "gateway.json failover.reconnect.steps", f"attempt {k + 1} came {gap * self.scale:.1f} s after the previous one (unscaled); the run book asks >= {a.wait:g} s ({self.clock})"
        total = (times[-1] - times[0]) * self.scale
        return True, self.svc_field("endpoints"), f"{' -> '.join(obs_roles)} in {total:.1f} s (unscaled; plan {binary_plan.duration(expected):g} s, {self.clock})"

    def _trace(self, hop: dict[str, Any]) -> str:
        """What the venue saw and the client did after the loss (seconds from it): enough to tell a
        wrong plan from a harness race when the order check fails."""
        t0 = hop["t0"]
        seen = [f"+{t - t0:.2f}s {role} ({state})" for t, role, state in hop["observed"]]
        done = [f"+{t - t0:.2f}s {what}" for t, what in (self.client.events if self.client else []) if t >= t0 - 1]
        return f" [venue saw: {', '.join(seen) or 'no attempt'}; client: {'; '.join(done[-6:]) or 'no event'}]"

    def check_failover(self) -> None:
        dead: set[str] = set()
        active = self.roles[0]
        details, order_ok, order_field = [], getattr(self, "order_ok", False), self.svc_field("endpoints[0]")
        seq_details, seq_ok = [], True
        if not order_ok:
            details.append("initial logon not at the run book's primary")
        hops = max(1, len(self.roles) - 1)
        for _ in range(hops):
            dead.add(active)
            hop = self._hop(dead, active)
            ok, field, detail = self._compare(hop)
            details.append(f"{active} lost: {detail}")
            if not ok:
                order_ok, order_field = False, field
                break
            lg = hop["logon"]
            good = lg.claim == lg.expected_claim and not lg.new_session
            seq_ok &= good
            what = "sequence number" if self.codec.claim == "inbound" else "outbound NextSeqNo"
            seq_details.append(f"{hop['target']} ({hop['policy']}): login claimed {what} {lg.claim}, venue expected {lg.expected_claim}"
                               + (" (a new UUID / session version)" if lg.new_session else ""))
            if hop["target"] == active:      # the plan stays on one endpoint
                dead.discard(active)
                break
            active = hop["target"]       # the lost endpoints stay down
        self.last_active = active
        if order_ok:
            self.add("failover-order", self.svc_field("endpoints"), True, "; ".join(details))
        else:
            self.add("failover-order", order_field, False, "; ".join(details))
        fs = self.rendered.get("failoverSequence") if self.rendered else None
        self.add("sequence", self.svc_field("failoverSequence"), seq_ok and bool(seq_details),
                 ("; ".join(seq_details) or "no failover logon to check")
                 + ("" if self.venue.failover_sequence else " (run book gives no failoverSequence: continue assumed)")
                 + (f"; rendered {fs}" if fs else ""))

    def _store(self) -> tuple[bool, str]:
        sts = next(o for o in self.site.objects if o.get("kind") == "StatefulSet"
                   and any(c["name"] == "gateway" for c in o["spec"]["template"]["spec"]["containers"]))
        pod = sts["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "gateway")
        mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == STATE_DIR), None)
        claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])}
        if mount is None:
            return False, f"StatefulSet {sts['metadata']['name']}: nothing mounted at {STATE_DIR}"
        name = mount["name"]
        volume: dict[str, Any] = next((v for v in pod.get("volumes", []) if v["name"] == name), {})
        kind = "PVC (volumeClaimTemplate)" if name in claims else next((k for k in volume if k != "name"), "unknown volume")
        return self.site.state_is_persistent(f"{STATE_DIR}/{self.name}"), f"StatefulSet {sts['metadata']['name']} volume {name} at {STATE_DIR} ({kind})"

    def _restart_state_volume(self) -> None:
        """What a pod restart does to the state directory: emptied unless it is on a PVC.

        Not ctx.restart_gateway(): that also empties the pod's /tmp emptyDir, which the sandbox does
        not overlay, so it deletes the host's /tmp (reported to the lead)."""
        if self.site.state_is_persistent(f"{STATE_DIR}/{self.name}"):
            return
        target = Path(STATE_DIR) / self.name
        if target.exists() and str(target).startswith(STATE_DIR + "/"):
            shutil.rmtree(target)

    def check_restart(self) -> None:
        persistent, store = self._store()
        settled = self.quiesce()
        if self.client:
            self.client.kill()
        active = getattr(self, "last_active", self.roles[0])
        self.venue.set_states({r: ("active" if r == active else "down") for r in self.roles})
        logons = len(self.venue.logons)
        self._restart_state_volume()
        client = self.new_client()
        client.start()
        budget = 2.0 + binary_plan.duration(binary_plan.attempts(self.reconnect, self.roles, 12)[0]) / self.scale
        _wait(lambda: any(lg.accepted for lg in self.venue.logons[logons:]), budget)
        lg = next((lg for lg in self.venue.logons[logons:] if lg.accepted), None)
        field = f"{store}"
        if lg is None:
            self.add("restart", field, False, f"after a pod restart the client did not log on again within {budget:.1f} s")
            return
        kept = lg.claim == lg.expected_claim and not lg.new_session
        what = "sequence number" if self.codec.claim == "inbound" else "outbound NextSeqNo"
        detail = f"after a pod restart the login claimed {what} {lg.claim}, venue expected {lg.expected_claim}" + (" with a new UUID / session version" if lg.new_session else "")
        if kept and persistent:
            self.add("restart", field, True, f"{detail}: state kept in {store}")
        elif not persistent:
            self.add("restart", field, False, f"{detail}: {STATE_DIR}/{self.name} is on {store}, which a pod restart empties")
        else:
            self.add("restart", field, False, f"{detail} although {store} is persistent"
                     + ("" if settled else " (the client had not written its state file within 5 s before the kill)"))

    def check_storm(self) -> None:
        field = "gateway.json failover.reconnect"
        self.venue.set_states({r: "down" for r in self.roles})
        expected, ends = binary_plan.attempts(self.reconnect, self.roles, limit=200)
        if ends:
            window = binary_plan.duration(expected) / self.scale + 2 * max(a.wait for a in expected) / self.scale + 0.5
        else:
            cycle = binary_plan.attempts({**self.reconnect, "then": "call-venue"}, self.roles, 200)[0]
            window = min(1.5 * binary_plan.duration(cycle) / self.scale + 0.3, 8.0)
        mark = len(self.venue.attempts)
        self.venue.kill_session()
        t0 = time.monotonic()
        time.sleep(window)
        observed = [t for t, _r, _s in self.venue.attempts[mark:]]
        allowed, elapsed = 0, 0.0
        for a in expected:
            elapsed += a.wait / self.scale
            if elapsed > window * 1.0:
                break
            allowed += 1
        gaps = [b - a for a, b in zip([t0] + observed, observed)]
        min_wait = min((a.wait for a in expected[1:]), default=0) / self.scale
        too_close = [g for g in gaps[1:] if g < min_wait * SPACING_TOLERANCE - 0.03]
        stopped = self.client is not None and self.client.status == "call-venue"
        plan_text = f"{self.reconnect.get('steps')} then {self.reconnect.get('then', 'repeat')}"
        ok = len(observed) <= allowed + 1 and not too_close and (stopped or not ends)
        detail = (f"all endpoints down for {window * self.scale:.0f} s (unscaled): {len(observed)} attempts, the run book's plan {plan_text} allows {allowed}"
                  + (f"; {len(too_close)} closer than {min_wait * self.scale:g} s" if too_close else "")
                  + ("; the client stopped to call the venue" if stopped else ("; the client did not stop" if ends else "; the plan repeats"))
                  + f" ({self.clock})")
        self.add("reconnect-policy", field, ok, detail)


def rehearse(ctx: Context, services: list[dict[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    for service in services:
        layer = str(service["protocol"]["sessionLayer"])
        if layer not in CODECS:
            findings.append(ctx.site.finding(service["name"], "logon", f"gateway.json services[{service['name']}].protocol.sessionLayer", False,
                                             f"no simulator for session layer {layer!r} (binary family knows {sorted(CODECS)})"))
            continue
        findings += Rehearsal(ctx, service).run()
    return findings
