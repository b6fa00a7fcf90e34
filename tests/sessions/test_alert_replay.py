"""Alert replay: series recorded by real session rehearsals, replayed into the real `promtool test
rules` against the alert rules the same overlay renders (vcpl.sessions.promreplay).

Each case runs a real sandbox, so the expectations come from what the scenario did (a session the
simulator dropped, a feed line it cut, a heartbeat it starved), and the replay must pass; a copy of
the rules with VenueSessionDown broken must make the same replay fail, naming the alert."""
from __future__ import annotations

import copy
import datetime as dt
import functools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from vcpl import paths, render, runbook, schedule
from vcpl.errors import VcplError
from vcpl.sessions import promreplay, sandbox

from .gate import gate
from .overlays import overlay_copy

# (venue, env) -> families rehearsed: an order-entry session plus a multicast feed, a WebSocket
# stream, and a FIX session driven by the real QuickFIX engine.
CASES = {
    ("nasdaq", "dev"): ["binary", "feed"],
    ("kraken", "dev"): ["websocket"],
    ("coinbase", "dev"): ["fix"],
}


def _skip_reason(venue: str, env: str) -> str | None:
    promtool = paths.TOOLS_BIN / "promtool"
    if not promtool.exists() and not shutil.which("promtool"):
        return "promtool is not installed (make setup puts it in .tools/bin)"
    reason = sandbox.unavailable()
    if reason:
        return reason
    try:
        render.build(env, venue)
    except VcplError as exc:
        return f"kustomize is not usable here: {exc}"
    if "fix" in CASES[(venue, env)]:
        from vcpl.sessions import fix

        reason = fix.unavailable()
        if reason:
            return reason
        if fix.faketime_lib() is None:
            return "libfaketime is not installed (apt-get install faketime): the FIX rehearsal's clock cannot be driven"
    return None


@functools.cache
def _rehearsal(venue: str, env: str) -> sandbox.Result:
    """One real rehearsal per overlay for the whole module (each takes 5-30 s)."""
    return sandbox.run(venue, env, families=CASES[(venue, env)], timeout=180)


def _recorded(venue: str, env: str) -> sandbox.Result:
    gate(_skip_reason(venue, env))
    result = _rehearsal(venue, env)
    assert result.samples, f"{venue} {env}: the rehearsal recorded no series\n{result.log[-2000:]}"
    return result


def _changes(result: sandbox.Result, metric: str, value: float | None = None) -> list[Any]:
    return [s for s in result.samples if s[1] == metric and (value is None or s[3] == value)]


def _inside_window(venue: str, p: promreplay.Plan) -> None:
    """Every asserted instant lies inside the run book's session window."""
    sched = runbook.load_venue(venue)["schedule"]
    for e in p.expectations:
        moment = dt.datetime.fromtimestamp(p.start_timestamp + e.eval_seconds, dt.timezone.utc)
        assert schedule.is_open(sched, moment), (e.alert, moment)


def _label_values(p: promreplay.Plan, alert: str, key: str) -> set[str]:
    return {v for e in p.asserted(alert) for labels in e.firing for k, v in labels if k == key}


def _heartbeat_stalls_fire(result: sandbox.Result, p: promreplay.Plan) -> None:
    """Where the scenario starved a session of heartbeats (its passing `liveness` check: the venue
    went silent and the client gave up), the replay asserts VenueHeartbeatTimeout for it."""
    stalled = {f.service for f in result.findings if f.check == "liveness" and f.ok}
    for service in stalled:
        assert any(dict(s[2]).get("service") == service for s in _changes(result, "vcpl_session_heartbeat_timeouts_total")), \
            f"{service}: the liveness scenario ran but no heartbeat timeout was recorded"
        assert service in _label_values(p, "VenueHeartbeatTimeout", "service"), service


def test_nasdaq_session_feed_and_heartbeat_alerts_replay() -> None:
    result = _recorded("nasdaq", "dev")
    groups = promreplay.rendered_rule_groups("nasdaq", "dev")
    p = promreplay.plan("nasdaq", "dev", result.samples, groups)
    _inside_window("nasdaq", p)
    # What the scenario did, from the recording itself: the OUCH session was logged off, a feed
    # line went down, a heartbeat timed out. Each must be an asserted firing in the replay.
    assert _changes(result, "vcpl_session_logged_on", 0), "the binary scenario never dropped the session"
    assert "ouch" in _label_values(p, "VenueSessionDown", "service")
    assert p.asserted("VenueSessionDown", firing=False), "logged-on phases must assert the alert quiet"
    assert _changes(result, "vcpl_feed_line_up", 0), "the feed scenario never lost a line"
    assert _label_values(p, "VenueFeedLineDown", "line") & {"a", "b"}
    assert any(f.check == "liveness" for f in result.findings), "the binary scenario no longer starves a heartbeat"
    _heartbeat_stalls_fire(result, p)
    assert p.asserted("VenueHeartbeatTimeout", firing=False)
    if _changes(result, "vcpl_feed_gap_packets_total"):
        assert p.asserted("VenueFeedGaps")
    assert p.asserted("VenueFeedStale", firing=False), "packets kept flowing: the stale alert must be asserted quiet"

    ok, report = promreplay.replay("nasdaq", "dev", result.samples, groups)
    assert ok, report
    assert "SUCCESS" in report


def test_kraken_stream_alerts_replay() -> None:
    result = _recorded("kraken", "dev")
    groups = promreplay.rendered_rule_groups("kraken", "dev")
    p = promreplay.plan("kraken", "dev", result.samples, groups)
    _inside_window("kraken", p)
    assert _changes(result, "vcpl_session_logged_on", 0), "the WebSocket scenario never dropped the stream"
    assert "ws-v2" in _label_values(p, "VenueSessionDown", "service")
    assert p.asserted("VenueSessionDown", firing=False)
    assert p.asserted("VenueStreamStale", firing=False)
    _heartbeat_stalls_fire(result, p)
    ok, report = promreplay.replay("kraken", "dev", result.samples, groups)
    assert ok, report


def test_coinbase_fix_session_alerts_replay() -> None:
    result = _recorded("coinbase", "dev")
    groups = promreplay.rendered_rule_groups("coinbase", "dev")
    p = promreplay.plan("coinbase", "dev", result.samples, groups)
    _inside_window("coinbase", p)
    assert _changes(result, "vcpl_session_logged_on", 0), "the FIX failover scenario never logged the session off"
    assert "fix-oe" in _label_values(p, "VenueSessionDown", "service")
    ok, report = promreplay.replay("coinbase", "dev", result.samples, groups)
    assert ok, report


def _corrupt(groups: list[dict[str, Any]], alert: str, old: str, new: str) -> list[dict[str, Any]]:
    broken = copy.deepcopy(groups)
    hits = 0
    for group in broken:
        for rule in group["rules"]:
            if rule.get("alert") == alert and old in rule["expr"]:
                rule["expr"] = rule["expr"].replace(old, new)
                hits += 1
    assert hits == 1, f"{alert}: {old!r} not found once in the rendered expression"
    return broken


@pytest.mark.parametrize("old,new", [
    (") == 0 and", ") == 1 and"),                                            # threshold inverted
    ('vcpl_session_logged_on{venue="nasdaq",environment="dev"}',
     'vcpl_session_logged_on{venue="nasdaq",environment="dev",service="itch"}'),  # matcher misses the session
], ids=["threshold", "label-matcher"])
def test_a_broken_session_down_rule_fails_the_replay(old: str, new: str) -> None:
    result = _recorded("nasdaq", "dev")
    broken = _corrupt(promreplay.rendered_rule_groups("nasdaq", "dev"), "VenueSessionDown", old, new)
    ok, report = promreplay.replay("nasdaq", "dev", result.samples, broken)
    assert not ok, report
    failed = [line for line in report.splitlines() if line.startswith("FAILED ")]
    assert failed and all("VenueSessionDown" in line for line in failed), report[:3000]
    assert "alertname: VenueSessionDown" in report          # promtool's own words


def test_cli_finding_names_the_rule_and_overlay(tmp_path: Path) -> None:
    """What `vcpl rehearse-sessions` gets per overlay: one Finding, ok here, failing on a broken
    copy of the overlay (a kustomization patching VenueSessionDown's threshold)."""
    result = _recorded("nasdaq", "dev")
    [good] = promreplay.findings(result)
    assert good.ok and good.check == "alert-replay" and (good.venue, good.env) == ("nasdaq", "dev"), good

    docs = [d for d in yaml.safe_load_all(render.build("dev", "nasdaq")) if d and d["kind"] == "PrometheusRule"]
    rule_doc = next(d for d in docs if any(r.get("alert") == "VenueSessionDown" for g in d["spec"]["groups"] for r in g["rules"]))
    group_index, index = next((gi, ri) for gi, g in enumerate(rule_doc["spec"]["groups"])
                              for ri, r in enumerate(g["rules"]) if r.get("alert") == "VenueSessionDown")
    expr = rule_doc["spec"]["groups"][group_index]["rules"][index]["expr"].replace(") == 0 and", ") == 1 and")
    patch = [{"op": "replace", "path": f"/spec/groups/{group_index}/rules/{index}/expr", "value": expr}]
    overlay = overlay_copy(tmp_path, "nasdaq", "dev",
                           [{"target": {"kind": "PrometheusRule", "name": rule_doc["metadata"]["name"]}, "patch": yaml.safe_dump(patch)}])
    [bad] = promreplay.findings(result, overlay=overlay)
    assert not bad.ok and (bad.venue, bad.env) == ("nasdaq", "dev"), bad
    assert "PrometheusRule" in bad.field and "VenueSessionDown" in bad.detail, bad
