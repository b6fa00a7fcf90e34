"""Alert rules are unit-tested with the real promtool, on the rules each overlay renders.

For every overlay: `promtool check rules`, the session window at instants whose answer was
worked out by hand (winter and summer time, daily breaks, maintenance), and for every alert a case
where it fires, one where it stays quiet and, where the venue has closed hours, one outside them
where it stays silent although the inputs are bad.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Docs
from vcpl import render, schedule

UTC = dt.timezone.utc
OVERLAYS = render.overlays()


def _at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# (venue, UTC instant, window open?) worked out by hand from the run books and the zone rules.
WINDOW_CASES = [
    ("cme", "2026-11-21T18:00", 0),  # Saturday: closed from Friday 17:00 CT
    ("cme", "2026-11-24T15:00", 1),  # Tuesday 09:00 CST
    ("cme", "2026-11-24T22:30", 0),  # Tuesday 16:30 CST: daily break 16:00-17:00
    ("cme", "2026-11-24T23:05", 1),  # Tuesday 17:05 CST: after the break
    ("cme", "2026-11-15T15:45", 0),  # Sunday 09:45 CST: before the 10:30 open
    ("cme", "2026-07-12T15:45", 1),  # Sunday 10:45 CDT: open (summer time)
    ("nasdaq", "2026-11-24T08:30", 0),  # Tuesday 03:30 EST
    ("nasdaq", "2026-11-24T09:05", 1),  # Tuesday 04:05 EST
    ("nasdaq", "2026-07-14T08:30", 1),  # Tuesday 04:30 EDT (summer time)
    ("nasdaq", "2026-11-25T01:30", 0),  # Tuesday 20:30 EST: after the close
    ("nasdaq", "2026-11-21T15:00", 0),  # Saturday
    ("coinbase", "2026-11-21T18:02", 0),  # Saturday 13:02 EST: weekly forced logout
    ("coinbase", "2026-11-21T18:06", 1),  # Saturday 13:06 EST
    ("coinbase", "2026-11-23T19:10", 0),  # Monday 14:10 EST: deployment logouts
    ("kraken", "2026-11-21T18:02", 1),  # 24/7
    ("nyse", "2026-11-24T07:05", 1),  # Tuesday 02:05 EST: after the 02:00 open
    ("nyse", "2026-11-24T20:30", 1),  # Tuesday 15:30 EST
    ("nyse", "2026-11-24T21:30", 0),  # Tuesday 16:30 EST: after the 16:00 close (NYSE has no 20:00 late session)
    ("nyse", "2026-07-14T20:30", 0),  # Tuesday 16:30 EDT (summer time): closed
    ("nyse", "2026-07-14T19:30", 1),  # Tuesday 15:30 EDT
]

ZERO = "0x130"
ONE = "1x130"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def _cases(alert: str, overlay: dict[str, str], namespace: str, start: int, expr: str) -> tuple[list, dict[str, str], list]:
    """(inputs that make `alert` fire, the labels it then carries, inputs that keep it quiet)."""
    # Rules about one service (throttle, recovery quota) name it in their selector.
    named = re.search(r'service="([^"]+)"', expr)
    svc = {**overlay, "service": named.group(1) if named else "svc"}
    chan = {**svc, "channel": "1"}
    up = {**overlay, "job": "venue-gateway", "instance": "gw-0"}
    counters = {
        "VenueHeartbeatTimeout": "vcpl_session_heartbeat_timeouts_total",
        "VenueSequenceGap": "vcpl_session_sequence_gaps_total",
        "VenueLogonRejected": "vcpl_session_logon_rejects_total",
        "VenueThrottleRejects": "vcpl_session_throttle_rejects_total",
    }
    if alert in counters:
        return [_series(counters[alert], svc, "0+1x130")], svc, [_series(counters[alert], svc, ZERO)]
    table: dict[str, tuple[list, dict[str, str], list]] = {
        "VenueGatewayDown": ([_series("up", up, ZERO)], up, [_series("up", up, ONE)]),
        "VenueGatewayAbsent": ([], {**overlay, "job": "venue-gateway"}, [_series("up", up, ONE)]),
        "VenueSessionDown": ([_series("vcpl_session_logged_on", svc, ZERO)], svc, [_series("vcpl_session_logged_on", svc, ONE)]),
        "VenueResendStorm": ([_series("vcpl_session_resend_requests_total", svc, "0+20x130")], svc,
                             [_series("vcpl_session_resend_requests_total", svc, "0+1x130")]),
        "VenueFeedLineDown": ([_series("vcpl_feed_line_up", {**chan, "line": "a"}, ZERO), _series("vcpl_feed_line_up", {**chan, "line": "b"}, ONE)],
                              {**chan, "line": "a"},
                              [_series("vcpl_feed_line_up", {**chan, "line": "a"}, ONE), _series("vcpl_feed_line_up", {**chan, "line": "b"}, ONE)]),
        "VenueFeedBothLinesDown": ([_series("vcpl_feed_line_up", {**chan, "line": "a"}, ZERO), _series("vcpl_feed_line_up", {**chan, "line": "b"}, ZERO)],
                                   chan,
                                   [_series("vcpl_feed_line_up", {**chan, "line": "a"}, ZERO), _series("vcpl_feed_line_up", {**chan, "line": "b"}, ONE)]),
        "VenueFeedGaps": ([_series("vcpl_feed_gap_packets_total", chan, "0+5x130")], chan, [_series("vcpl_feed_gap_packets_total", chan, ZERO)]),
        "VenueFeedStale": ([_series("vcpl_feed_last_packet_timestamp_seconds", chan, f"{start - 3600}x130")], chan,
                           [_series("vcpl_feed_last_packet_timestamp_seconds", chan, f"{start}+60x130")]),
        "VenueStreamStale": ([_series("vcpl_feed_last_packet_timestamp_seconds", svc, f"{start - 3600}x130")], svc,
                             [_series("vcpl_feed_last_packet_timestamp_seconds", svc, f"{start}+60x130")]),
        "VenueVpnTunnelDown": ([_series("vcpl_vpn_tunnel_up", overlay, ZERO)], overlay, [_series("vcpl_vpn_tunnel_up", overlay, ONE)]),
        "VenueEgressPathDown": ([_series("vcpl_egress_path_up", overlay, ZERO)], overlay, [_series("vcpl_egress_path_up", overlay, ONE)]),
    }
    cert = {"namespace": namespace, "name": "venue-client-tls"}
    table["VenueCertificateExpiring"] = (
        [_series("certmanager_certificate_expiration_timestamp_seconds", cert, f"{start + 3 * 86400}x130")], {**cert, **overlay},
        [_series("certmanager_certificate_expiration_timestamp_seconds", cert, f"{start + 60 * 86400}x130")],
    )
    pod = _series("kube_pod_info", {"namespace": namespace, "pod": "venue-gateway-0", "node": "n1"}, ONE)
    table["VenueClockOffset"] = (
        [_series("openshift_ptp_offset_ns", {"process": "phc2sys", "node": "n1"}, "500000x130"), pod], {"node": "n1", **overlay},
        [_series("openshift_ptp_offset_ns", {"process": "phc2sys", "node": "n1"}, "5000x130"), pod],
    )
    limit = re.search(r"!= (\d+)", expr)
    if alert == "VenueThrottleChanged" and limit:
        table[alert] = ([_series("vcpl_session_throttle_limit_messages", svc, f"{int(limit.group(1)) // 2}x130")], svc,
                        [_series("vcpl_session_throttle_limit_messages", svc, f"{limit.group(1)}x130")])
    recovery = re.search(r'recovery="(\d+)"', expr)
    if alert == "VenueRecoveryQuotaLow" and recovery:
        labels = {**svc, "recovery": recovery.group(1)}
        table[alert] = ([_series("vcpl_recovery_requests_total", labels, "0+1500x130")], labels,
                        [_series("vcpl_recovery_requests_total", labels, ZERO)])
    if alert not in table:
        raise AssertionError(f"{alert} has no test case: add one to tests/test_alerts.py")
    return table[alert]


def _expand(text: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)


def _rules(docs: Docs) -> list[dict[str, Any]]:
    return [g for d in docs if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"]]


def _moment(sched: dict[str, Any], want_open: bool) -> int | None:
    """An instant whose window state holds from 10 minutes before to 150 minutes after it."""
    start = dt.datetime(2026, 11, 16, tzinfo=UTC)
    for step in range(0, 7 * 24 * 4):
        moment = start + dt.timedelta(minutes=15 * step)
        probes = [moment + dt.timedelta(minutes=m) for m in range(-10, 151, 5)]
        if all(schedule.is_open(sched, p) == want_open for p in probes):
            return int(moment.timestamp())
    return None


def _eval_minutes(rule: dict[str, Any]) -> int:
    """Evaluate just past the rule's `for` (promtool evaluates every rule at every step)."""
    number, unit = re.fullmatch(r"(\d+)([smh])", rule.get("for", "0m")).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1 / 60, "m": 1, "h": 60}[unit] + 10


def _alert_group(alert: str, rule: dict[str, Any], inputs: list, labels: dict[str, str] | None, start: int) -> dict[str, Any]:
    expected = []
    if labels is not None:
        all_labels = {**labels, **rule.get("labels", {})}
        expected = [{"exp_labels": all_labels, "exp_annotations": {k: _expand(v, all_labels) for k, v in rule["annotations"].items()}}]
    return {
        "interval": "1m",
        "start_timestamp": start,
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": f"{int(_eval_minutes(rule))}m", "alertname": alert, "exp_alerts": expected}],
    }


def promtool_tests(env: str, venue: str, docs: Docs, runbook: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    overlay = {"venue": venue, "environment": env}
    namespace = f"venue-{venue}-{env}"
    window = f'{schedule.WINDOW}{{environment="{env}",venue="{venue}"}}'
    groups = [
        {
            "interval": "1m",
            "start_timestamp": _at(instant) - 60,
            "input_series": [],
            "promql_expr_test": [{"expr": f'{schedule.WINDOW}{{venue="{venue}"}}', "eval_time": "1m", "exp_samples": [{"labels": window, "value": state}]}],
        }
        for case_venue, instant, state in WINDOW_CASES
        if case_venue == venue
    ]
    opened = _moment(runbook["schedule"], True)
    closed = _moment(runbook["schedule"], False)
    assert opened is not None
    counts = {"firing": 0, "quiet": 0, "outside": 0}
    for group in _rules(docs):
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            firing, labels, quiet = _cases(rule["alert"], overlay, namespace, opened, rule["expr"])
            groups.append(_alert_group(rule["alert"], rule, firing, labels, opened))
            groups.append(_alert_group(rule["alert"], rule, quiet, None, opened))
            counts["firing"] += 1
            counts["quiet"] += 1
            if schedule.WINDOW in rule["expr"] and closed is not None:
                firing_closed, _, _ = _cases(rule["alert"], overlay, namespace, closed, rule["expr"])
                groups.append(_alert_group(rule["alert"], rule, firing_closed, None, closed))
                counts["outside"] += 1
    return groups, counts


@pytest.mark.parametrize("env,venue", OVERLAYS, ids=[f"{e}/{v}" for e, v in OVERLAYS])
def test_alert_rules_pass_promtool(rendered_overlays, runbooks, env: str, venue: str, tmp_path: Path) -> None:
    docs = rendered_overlays[(env, venue)]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": _rules(docs)}, sort_keys=False))
    promtool = render.tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    groups, counts = promtool_tests(env, venue, docs, runbooks[venue])
    assert counts["firing"] > 0 and counts["firing"] == counts["quiet"]
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": groups}, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_outside_hours_silence_is_tested_for_weekly_and_daily_venues(rendered_overlays, runbooks) -> None:
    """CME (weekly session, daily break) and Nasdaq (daily session) get outside-hours cases."""
    for venue in ("cme", "nasdaq"):
        _, counts = promtool_tests("prod", venue, rendered_overlays[("prod", venue)], runbooks[venue])
        assert counts["outside"] >= 5, (venue, counts)
    assert any(v == "cme" and s == 0 and "T22:30" in i for v, i, s in WINDOW_CASES), "the CME daily break must be covered"


def test_a_wrong_window_expectation_fails(rendered_overlays, tmp_path: Path) -> None:
    """The window cases can fail: the same machinery with the answer flipped must be rejected."""
    docs = rendered_overlays[("prod", "cme")]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": _rules(docs)}, sort_keys=False))
    flipped = {
        "interval": "1m",
        "start_timestamp": _at("2026-11-21T18:00") - 60,
        "input_series": [],
        "promql_expr_test": [{"expr": f'{schedule.WINDOW}{{venue="cme"}}', "eval_time": "1m",
                              "exp_samples": [{"labels": f'{schedule.WINDOW}{{environment="prod",venue="cme"}}', "value": 1}]}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [flipped]}))
    result = subprocess.run([render.tool("promtool"), "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
