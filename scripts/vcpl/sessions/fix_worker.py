"""(internal) The FIX rehearsal of one venue and environment, run by vcpl.sessions.fix in a child
process inside the sandbox so that libfaketime can give the venue and the engine one controllable
clock (QuickFIX reads the wall clock for its session window and its resets).

Talks to its parent over pipes: `FIXEVT {...}` lines carry metric changes and the request to
restart the pod's volumes (the parent calls ctx.restart_gateway() and answers on stdin); the last
line `FIXRESULT [...]` carries the Findings.
"""
from __future__ import annotations

import datetime as dt
import gc
import json
import os
import pickle
import sys
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import quickfix as fix  # type: ignore[import-untyped]

from vcpl import schedule as sched
from vcpl.sessions.fix_client import SIDECAR_FAILURES, Client, cfg_values, probe, start_sidecars
from vcpl.sessions.fix_sim import LOGON_FIELDS, NOT_IN_LOGON, Expect, Venue, mono
from vcpl.sessions.site import Finding, Site

_out = threading.Lock()
HB_TOLERANCE = 1.5       # s either side of HeartBtInt (QuickFIX checks once a second)
RECONNECT_SLACK = 1.5    # s beyond ReconnectInterval (the engine's timer ticks once a second)
ENGINE = "1.16.0 (C++)"


def send(kind: str, payload: Any) -> None:
    with _out:
        sys.stdout.write(f"{kind} {json.dumps(payload)}\n")
        sys.stdout.flush()


def emit(op: str, name: str, value: float, service: str) -> None:
    send("FIXEVT", {"metric": op, "name": name, "value": value, "service": service})


def restart_gateway() -> None:
    held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")]
    held = [p for p in held if p.startswith("/var/lib/")]
    if held:
        print(f"fix_worker: files still open at the pod restart: {held}", file=sys.stderr)
    send("FIXEVT", {"restart": True})
    if sys.stdin.readline().strip() != "ok":
        raise RuntimeError("the sandbox did not restart the gateway's volumes (see its log)")


# --- the controllable clock ---------------------------------------------------------------------
class Clock:
    """libfaketime's offset, written to FAKETIME_TIMESTAMP_FILE (re-read every second)."""

    def __init__(self) -> None:
        self.file = os.environ.get("FAKETIME_TIMESTAMP_FILE")
        self.offset = float(os.environ.get("VCPL_FAKETIME_OFFSET", "0"))

    @property
    def faked(self) -> bool:
        return bool(self.file)

    def set(self, moment: float) -> None:
        real = time.time() - self.offset
        self.offset = round(moment - real)
        # Replaced, never rewritten in place: libfaketime reading a truncated file falls back to
        # offset +0, the real clock, for a second.
        staged = Path(f"{self.file}.new")
        staged.write_text(f"{self.offset:+d}\n", encoding="utf-8")
        os.replace(staged, self.file)  # type: ignore[arg-type]
        # libfaketime re-reads the file at most once a second (FAKETIME_CACHE_DURATION=1): wait
        # until this thread sees the new time, then a little more so every engine thread does,
        # or the two engines stamp SendingTime from different clocks for a moment.
        end = mono() + 5
        while abs(time.time() - moment) > 3 and mono() < end:
            time.sleep(0.1)
        time.sleep(1.5)


def _week_start(moment: float, zone: str) -> dt.datetime:
    local = dt.datetime.fromtimestamp(moment, ZoneInfo(zone))
    days = sched.DAYS.index(local.strftime("%A").lower())
    return (local - dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


def _at(week: dt.datetime, minute: int, zone: str) -> float:
    return (week + dt.timedelta(minutes=minute)).replace(tzinfo=ZoneInfo(zone)).timestamp()


def boundaries(schedule: dict[str, Any], moment: float) -> tuple[float, float]:
    """(the next close after moment, the next open after that close), from the run book."""
    zone = schedule["timeZone"]
    week = _week_start(moment, zone)
    ranges = sched._weekly_ranges(schedule)
    closes = sorted(_at(week + dt.timedelta(days=7 * k), b, zone) for k in (0, 1) for _, b in ranges)
    opens = sorted(_at(week + dt.timedelta(days=7 * k), a, zone) for k in (0, 1, 2) for a, _ in ranges)
    # Ranges split at the week's end (a, 7d) + (0, b) are one session: skip those joins.
    close = next(c for c in closes if c > moment and not sched.is_open(schedule, dt.datetime.fromtimestamp(c + 30, dt.timezone.utc)))
    reopen = next(o for o in opens if o > close)
    return close, reopen


def open_instant(schedule: dict[str, Any], real_now: float) -> float:
    """An instant an hour into the first session of next week: where the rehearsal's clock starts."""
    zone = schedule["timeZone"]
    week = _week_start(real_now, zone) + dt.timedelta(days=7)
    for a, _ in sorted(sched._weekly_ranges(schedule)):
        moment = _at(week, a + 60, zone)
        if sched.is_open(schedule, dt.datetime.fromtimestamp(moment, dt.timezone.utc)):
            return moment
    raise RuntimeError("the run book's schedule has no open hour")


# --- the scenario ---------------------------------------------------------------------------------
def wait_for(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    end = mono() + timeout
    while mono() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Rehearsal:
    def __init__(self, site: Site, service: dict[str, Any], work: Path, clock: Clock):
        self.site, self.service, self.work, self.clock = site, service, work, clock
        self.name = service["name"]
        self.failed_over_to = ""
        self.findings: list[Finding] = []
        self.cfg_path = site.path_of("session.cfg") or "/etc/venue-gateway/fix/session.cfg"
        # Every venue and client made, referenced until the process exits: QuickFIX crashes when
        # an acceptor or initiator object is destroyed while its threads still run.
        self.engines: list[Any] = []

    def add(self, check: str, field: str, ok: bool, detail: str) -> None:
        self.findings.append(self.site.finding(self.name, check, field, ok, detail))

    def new_client(self) -> Client:
        client = Client(self.cfg_path, self.site.gateway, self.site.objects, emit)
        self.engines.append(client)
        client.start()
        return client

    def run(self) -> list[Finding]:
        venue = Venue(self.site, self.service, self.work)
        self.engines.append(venue)
        e = venue.expect
        for field, detail in venue.problems:
            self.add("endpoint", field, False, detail)
        venue.start()
        try:
            self._scenario(venue, e)
        finally:
            venue.stop()
        if not all(f.ok for f in self.findings):
            # The engines' event logs explain a failure; the sandbox's scratch is gone afterwards.
            for log in sorted(venue.work.glob("log/*event*.log")) + sorted(Path(self.cfg_dir_log()).glob("*.log")):
                lines = log.read_text(encoding="utf-8", errors="replace").replace("\x01", "|").splitlines()[-80:]
                print(f"--- {log} (last {len(lines)} lines)", *lines, sep="\n", file=sys.stderr)
        return self.findings

    def cfg_dir_log(self) -> str:
        text = Path(self.cfg_path).read_text(encoding="utf-8")
        return next((s["FileLogPath"] for s in cfg_values(text) if "FileLogPath" in s), "/nonexistent")

    def _skip(self, checks: list[str], field: str, why: str) -> None:
        for check in checks:
            self.add(check, field, False, f"not rehearsed: {why}")

    def _scenario(self, venue: Venue, e: Expect) -> None:
        later = ["heartbeat", "test-request", "failover", "reconnect-policy", "restart-sequence"]
        if e.schedule.get("continuous") is not True:
            later += ["session-window", "sequence-reset"]
        text = Path(self.cfg_path).read_text(encoding="utf-8")
        for problem in start_sidecars(cfg_values(text), self.site.objects):
            self.add("sidecar", "stunnel.conf accept", False, problem)
        try:
            probe(self.cfg_path)
            client = self.new_client()
            self.add("engine-config", "session.cfg", True, f"QuickFIX {ENGINE} loads {self.cfg_path} unmodified")
        except (fix.ConfigError, fix.RuntimeError) as exc:
            field = "session.cfg DataDictionary" if "DataDictionary" in str(exc) else "session.cfg"
            if "DataDictionary" not in str(exc):
                self.add("engine-config", field, False, f"QuickFIX {ENGINE} does not load {self.cfg_path}: {exc}")
                self._skip(["logon"] + later, field, "the engine did not start")
                return
            # QuickFIX C++ validates with a data dictionary unless told not to (UseDataDictionary
            # defaults to Y) and ships none: say so, then rehearse the rest with that one line added.
            self.add("engine-config", field, False,
                     f"QuickFIX {ENGINE} does not load {self.cfg_path}: {exc} (UseDataDictionary defaults to Y and no DataDictionary/"
                     "TransportDataDictionary path is rendered); the other checks ran on a copy with UseDataDictionary=N added to [DEFAULT]")
            amended = self.work / "session.cfg"
            amended.write_text(text.replace("[DEFAULT]\n", "[DEFAULT]\nUseDataDictionary=N\n", 1), encoding="utf-8")
            self.cfg_path = str(amended)
            client = self.new_client()
        for s in cfg_values(text):
            for name in ("SenderSubID", "TargetSubID"):
                if name in s:
                    # QuickFIX/J sends it itself; with the C++ engine the gateway stamps it (the venue's logon check sees it).
                    self.add("engine-config", f"session.cfg {name}", True,
                             f"QuickFIX {ENGINE} does not read {name} from its settings; the rehearsal's gateway stamps {name}={s[name]} "
                             "on every outgoing message from session.cfg, as a C++-based gateway must")
        app = venue.app
        # 1. logon -------------------------------------------------------------------------------
        # Under load a first TLS handshake may time out: allow the engine two reconnects.
        logon_wait = 2 * e.reconnect_interval + 3
        wait_for(lambda: app.logged_on and client.app.logged_on, logon_wait)
        if not (app.logged_on and client.app.logged_on):
            field, detail = self._logon_failure(venue, client, logon_wait)
            self.add("logon", field, False, detail)
            self._skip(later, field, "the logon failed")
            client.stop()
            return
        t_logon, logon, _ = app.logons[-1]
        first = next((c for c in reversed(venue.connections) if c.logon), None)
        role = first.role if first else "?"
        creds = [k for k in e.auth_keys if k in LOGON_FIELDS] + [f"not {k} ({why})" for k, why in NOT_IN_LOGON.items() if k in e.auth_keys]
        self.add("logon", "session.cfg SenderCompID", True,
                 f"logged on at the {role} endpoint as {logon.get(49)}->{logon.get(56)} ({logon.get(8)}), HeartBtInt {logon.get(108)} within "
                 f"{e.hb_min or 1}..{e.hb_max or 'any'} s, credentials checked: {', '.join(creds) or 'none'}")
        # 2. heartbeat interval, measured from the Logon to the client's first Heartbeat --------
        declared = int(logon.get(108, "0"))
        wait_for(lambda: bool(app.heartbeats), declared + HB_TOLERANCE + 1, 0.02)
        if app.heartbeats:
            measured = app.heartbeats[0] - t_logon
            ok = abs(measured - declared) <= HB_TOLERANCE and declared == e.heartbeat
            self.add("heartbeat", "session.cfg HeartBtInt", ok,
                     f"run book interval {e.heartbeat} s, logon declared {declared} s, first Heartbeat after {measured:.1f} s (tolerance ±{HB_TOLERANCE} s)")
        else:
            self.add("heartbeat", "session.cfg HeartBtInt", False, f"no Heartbeat within {declared + HB_TOLERANCE + 1:.0f} s of the logon (declared {declared} s)")
        # 3. TestRequest ---------------------------------------------------------------------------
        t_req = mono()
        venue.test_request("VCPL-TEST-1")
        answered = wait_for(lambda: "VCPL-TEST-1" in app.test_answers, 3)
        self.add("test-request", "session.cfg HeartBtInt", answered,
                 f"TestRequest VCPL-TEST-1 answered by Heartbeat(112) after {app.test_answers['VCPL-TEST-1'] - t_req:.2f} s" if answered
                 else "TestRequest VCPL-TEST-1 not answered within 3 s")
        # 4. failover (or, with one endpoint, reconnection to it) ---------------------------------
        self._failover(venue, e, role, client)
        # 5. no reconnect storm while every endpoint is down --------------------------------------
        self._storm(venue, e)
        # 6. pod restart keeps the sequence ---------------------------------------------------------
        client.stop()
        del client
        gc.collect()
        restart_gateway()
        for ep in venue.endpoints:
            ep.set_up(True)
        expected = venue.expected_client_seq()
        seen = len(venue.connections)
        client = self.new_client()
        # The first attempt may meet a listener still coming up: allow one ReconnectInterval more.
        wait_for(lambda: any(c.logon for c in venue.connections[seen:]) and (client.app.logged_on or client.app.rejects), e.reconnect_interval + 3)
        self._restart(venue, e, client, expected, seen)
        # 7. session window and reset cadence (the pod starts again 8 s before the close) --------
        if "session-window" in later:
            if not self.clock.faked:
                self._skip(["session-window", "sequence-reset"], "session.cfg StartTime", "libfaketime is not installed (apt-get install faketime)")
            elif not client.app.logged_on:
                self._skip(["session-window", "sequence-reset"], "session.cfg StartTime", "the session did not log on after the restart")
            else:
                client.stop()
                del client
                gc.collect()
                close, reopen = boundaries(e.schedule, time.time())
                self.clock.set(close - 8)
                client = self.new_client()
                self._window(venue, e, client, close, reopen)
        client.stop()

    def _logon_failure(self, venue: Venue, client: Client, waited: float) -> tuple[str, str]:
        e = venue.expect
        if venue.app.logons and venue.app.logons[-1][2]:
            field, detail = venue.app.logons[-1][2][0]
            return field, f"venue rejected the logon: {detail}"
        sniffed = next((c for c in reversed(venue.connections) if c.logon), None)
        if sniffed and sniffed.logon:
            problems = e.logon_problems(sniffed.logon)
            if problems:
                return problems[0][0], f"venue has no such session and dropped the connection: {problems[0][1]}"
            return "session.cfg", f"the venue did not complete the logon; client errors: {client.app.errors[:2]} rejects: {client.app.rejects[:2]}"
        if venue.connections:
            return "session.cfg SocketConnectHost", f"connections arrived but no Logon was sent within {waited:.0f} s"
        where = ", ".join(f"{r} {h}:{p}" for r, h, p, _ in e.endpoints)
        return "session.cfg SocketConnectHost", f"no connection reached any run-book endpoint ({where}) within {waited:.0f} s"

    def _failover(self, venue: Venue, e: Expect, first_role: str, client: Client) -> None:
        roles = [r for r, *_ in e.endpoints]
        ri = e.reconnect_interval
        if first_role != roles[0]:
            self.add("failover", "session.cfg SocketConnectHost", False,
                     f"the first connection went to the {first_role} endpoint while the {roles[0]} was up; run book order: {', '.join(roles)}")
            return
        before = venue.expected_client_seq()
        sender_before = int(venue.session.getExpectedSenderNum())
        target = roles[1] if len(roles) > 1 else roles[0]
        policy = "per-connection" if e.cadence == "per-connection" else e.failover_sequence.get(target, "continue") if target != roles[0] else "continue"
        n_logons = len(venue.app.logons)
        primary = venue.endpoint(roles[0])
        t0 = mono()
        if target != roles[0] and primary:
            primary.set_up(False)
        elif primary:
            primary.kill()
        if policy == "reset":
            venue.session.reset()
        elif policy == "jump":
            venue.session.setNextSenderMsgSeqNum(sender_before + int(e.failover_sequence.get("jumpBy", 100)))
        resends = venue.app.resend_requests
        ok_logon = wait_for(lambda: len(venue.app.logons) > n_logons and venue.app.logged_on and client.app.logged_on, ri + RECONNECT_SLACK + 2)
        elapsed = mono() - t0
        if not ok_logon:
            where = next((c.role for c in reversed(venue.connections) if c.at > t0), "no endpoint")
            self.add("failover", "session.cfg SocketConnectHost1" if target != roles[0] else "session.cfg ReconnectInterval", False,
                     f"after the {roles[0]} died the client did not log on again at the {target} within {ri + RECONNECT_SLACK + 2:.1f} s (last connection: {where})")
            return
        t_logon, logon, _ = venue.app.logons[-1]
        conn = next((c for c in reversed(venue.connections) if c.logon and c.at > t0), None)
        reached = conn.role if conn else "?"
        self.failed_over_to = reached
        seq = int(logon.get(34, "0"))
        reset_flag = logon.get(141) == "Y"
        problems = []
        if reached != target:
            problems.append(("session.cfg SocketConnectHost1", f"reached the {reached} endpoint, run book order says {target} next"))
        if elapsed > ri + RECONNECT_SLACK:
            problems.append(("session.cfg ReconnectInterval", f"took {elapsed:.1f} s, run book reconnect interval {ri} s (+{RECONNECT_SLACK} s)"))
        if policy == "per-connection" and not (seq == 1 and reset_flag):
            problems.append(("session.cfg ResetOnLogon", f"run book cadence per-connection: expected MsgSeqNum 1 with ResetSeqNumFlag Y, got {seq} {logon.get(141, 'N')}"))
        elif policy == "continue" and seq != before:
            problems.append(("session.cfg ResetOnLogon" if reset_flag else "session.cfg ResetOnDisconnect",
                             f"run book failoverSequence {target}: continue, expected MsgSeqNum {before} from the file store, got {seq}"))
        elif policy == "reset" and not (seq == 1 and reset_flag):
            problems.append(("session.cfg ResetOnLogon", f"run book failoverSequence {target}: reset, expected MsgSeqNum 1 with ResetSeqNumFlag Y, got {seq}"))
        elif policy == "jump":
            wait_for(lambda: venue.app.resend_requests > resends, 3)
            if venue.app.resend_requests <= resends:
                problems.append(("session.cfg", f"run book failoverSequence {target}: jump, expected a ResendRequest for the gap, none came"))
        what = "failover" if target != roles[0] else "reconnection (one endpoint in the run book)"
        detail = f"{what}: {roles[0]} -> {reached} in {elapsed:.1f} s (ReconnectInterval {ri} s), Logon MsgSeqNum {seq} ({policy}; venue expected {before})"
        if problems:
            self.add("failover", problems[0][0], False, "; ".join(p[1] for p in problems) + f" [{detail}]")
        else:
            self.add("failover", "session.cfg SocketConnectHost1" if target != roles[0] else "session.cfg SocketConnectHost", True, detail)

    def _storm(self, venue: Venue, e: Expect) -> None:
        ri = e.reconnect_interval
        window = ri + 1.0
        for ep in venue.endpoints:
            ep.set_up(False)
        t0 = mono()
        time.sleep(window)
        per_role = {ep.role: sum(1 for t in ep.attempts if t >= t0) for ep in venue.endpoints}
        count = sum(per_role.values())
        allowed = int(window // ri) + 1
        ok = 1 <= count <= allowed
        self.add("reconnect-policy", "session.cfg ReconnectInterval", ok,
                 f"{count} connect attempts in {window:.0f} s with every endpoint down (allowed 1..{allowed} at the run book's {ri} s): "
                 + ", ".join(f"{r} {n}" for r, n in per_role.items()))
        roles = [r for r, *_ in e.endpoints]
        if "dr" in roles:
            index = roles.index("dr")
            rule = e.failover_sequence.get("dr")
            reached = per_role.get("dr", 0) > 0 or self.failed_over_to == "dr"
            ok = not reached or rule in (None, "continue")
            self.add("dr-endpoint", f"session.cfg SocketConnectHost{index}", ok,
                     ("the engine connects to the DR endpoint on its own once the others fail (QuickFIX rotates through every SocketConnectHost<n>), "
                      f"with its stored MsgSeqNum; run book failoverSequence.dr: {rule or 'not stated'}") if reached
                     else "the DR endpoint received no connection while the others were down")

    def _restart(self, venue: Venue, e: Expect, client: Client, expected: int, seen: int) -> None:
        conn = next((c for c in venue.connections[seen:] if c.logon), None)
        store = next((s.get("FileStorePath") for s in client.sessions if s.get("SenderCompID") == e.sender), None) or \
            (client.sessions[0].get("FileStorePath", "?") if client.sessions else "?")
        on = "a claim (PVC)" if self.site.state_is_persistent(store) else "a volume a pod restart empties (emptyDir)"
        if conn is None or conn.logon is None:
            self.add("restart-sequence", "session.cfg FileStorePath", False, f"after the pod restart no Logon reached the venue within {e.reconnect_interval + 3} s")
            return
        seq = int(conn.logon.get(34, "0"))
        if e.cadence == "per-connection":
            ok = seq == 1 and conn.logon.get(141) == "Y" and client.app.logged_on
            self.add("restart-sequence", "session.cfg ResetOnLogon", ok,
                     f"run book cadence per-connection: Logon after the restart MsgSeqNum {seq}, ResetSeqNumFlag {conn.logon.get(141, 'N')}")
            return
        # Higher than expected is fine (a Logon sent into the outage was stored, never delivered:
        # the venue asks for a resend); lower is what the venue rejects.
        ok = seq >= expected and client.app.logged_on
        detail = f"after the pod restart the engine logged on with MsgSeqNum {seq}, venue expected {expected} or more (cadence {e.cadence}, no reset on logon); FileStorePath={store} is on {on}"
        if not ok:
            detail += f"; venue answered: {(client.app.rejects or ['no logon'])[-1]}"
        self.add("restart-sequence", "session.cfg FileStorePath", ok, detail)

    @staticmethod
    def _window_field(client: Client) -> tuple[str, str]:
        """The setting to blame when the engine's window is not the run book's."""
        local = all(s.get("UseLocalTime") == "Y" for s in client.sessions)
        if not local:
            return ("session.cfg UseLocalTime", "QuickFIX C++ reads StartTime/EndTime as UTC unless UseLocalTime=Y "
                    "(then in the container's TZ); TimeZone is QuickFIX/J's and it ignores it")
        zone = os.environ.get("TZ", "")
        return ("session.cfg EndTime", f"the rendered window (read in TZ={zone or 'unset'}) is not the run book's")

    def _window(self, venue: Venue, e: Expect, client: Client, close: float, reopen: float) -> None:
        zone = ZoneInfo(e.schedule["timeZone"])
        fmt = lambda t: dt.datetime.fromtimestamp(t, zone).strftime("%a %H:%M:%S %Z")  # noqa: E731
        if not wait_for(lambda: client.app.logged_on, 4):
            field, why = self._window_field(client)
            self.add("session-window", field, False, f"the engine did not log on at {fmt(close - 8)}, inside the run book window (close {fmt(close)}): {why}")
            self._skip(["sequence-reset"], field, "the engine's window differs from the run book's")
            return
        wait_for(lambda: time.time() >= close + 3, 14)
        t_out = client.app.logout_wall[-1] if client.app.logout_wall else None
        logged_out = not client.app.logged_on and t_out is not None
        attempts_at = sum(len(ep.attempts) for ep in venue.endpoints)
        time.sleep(2)
        attempts_closed = sum(len(ep.attempts) for ep in venue.endpoints) - attempts_at
        ok = logged_out and t_out is not None and close - 1.5 <= t_out <= close + 2.5 and attempts_closed == 0
        field, why = self._window_field(client) if not ok else ("session.cfg EndTime", "")
        self.add("session-window", field, ok,
                 (f"logged out at {fmt(t_out)} for the run book close {fmt(close)}" if t_out else f"still logged on after the run book close {fmt(close)}")
                 + f"; {attempts_closed} connect attempts in the next 2 s while closed (faked clock, libfaketime)"
                 + (f"; {why}" if why else ""))
        n = len(venue.connections)
        self.clock.set(reopen + 1)
        # The engine's reconnect timer is long due after the jump: it connects within a second,
        # to whichever host its rotation is at (all are up), and resets its store on the way.
        reopen_wait = e.reconnect_interval + 4
        wait_for(lambda: client.app.logged_on, reopen_wait)
        conn = next((c for c in venue.connections[n:] if c.logon), None)
        seq = int(conn.logon.get(34, "0")) if conn and conn.logon else None
        ok = client.app.logged_on and seq == 1
        self.add("sequence-reset", "session.cfg StartTime", ok,
                 f"run book cadence {e.cadence}: at the next open {fmt(reopen)} the engine "
                 + (f"logged on with MsgSeqNum {seq} (expected 1, a new session period)" if seq is not None else f"sent no Logon within {reopen_wait:g} s")
                 + ("" if ok else self._reopen_trace(venue, n, reopen - 1)))

    @staticmethod
    def _reopen_trace(venue: Venue, n: int, since: float) -> str:
        """Every connection the venue saw after the clock moved, and what the sidecar could not carry:
        tells a rendering fault from a connection lost on the way."""
        seen = [f"{c.role}: " + (f"Logon MsgSeqNum {c.logon.get(34)}" if c.logon else "no Logon") for c in venue.connections[n:]]
        lost = [what for at, what in SIDECAR_FAILURES if at >= since]
        return f" [venue saw: {'; '.join(seen) or 'no connection'}" + (f"; sidecar failed: {'; '.join(lost[-3:])}" if lost else "") + "]"


def main() -> int:
    with open(sys.argv[1], "rb") as fh:
        site, services, work = pickle.load(fh)
    clock = Clock()
    findings: list[Finding] = []
    # Kept alive until the process exits, with the engines they made (see Rehearsal.engines).
    rehearsals = [Rehearsal(site, service, Path(work), clock) for service in services]
    for rehearsal in rehearsals:
        findings += rehearsal.run()
    send("FIXRESULT", [f.as_dict() for f in findings])
    os._exit(0)  # the engine's threads need not be joined


if __name__ == "__main__":
    sys.exit(main())
