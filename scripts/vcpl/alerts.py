"""Venue-session alert rules, derived from the services a run book declares.

The metric names below are the contract a gateway image must expose (documented in
components/observability/README.md). Every series carries `venue` and `environment` labels,
added by the ServiceMonitor's relabelings, so one overlay's rules only see its own gateway.
"""
from __future__ import annotations

from typing import Any

from vcpl.runbook import Runbook

SESSION_PURPOSES = {"order-entry", "drop-copy"}


def _rule(alert: str, expr: str, for_: str, severity: str, summary: str, action: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "action": action},
    }


def rule_groups(rb: Runbook, env: str) -> list[dict[str, Any]]:
    venue = rb["venue"]["id"]
    sel = f'venue="{venue}",environment="{env}"'
    purposes = {s["purpose"] for s in rb["services"]}
    has_multicast = any(s["environments"][env].get("channels") for s in rb["services"])
    gateway = [
        _rule(
            "VenueGatewayDown",
            f'up{{{sel},job="venue-gateway"}} == 0',
            "2m",
            "critical",
            f"{venue} {env}: the gateway's metrics endpoint is unreachable",
            "Check the pod: kubectl get pods -l app.kubernetes.io/name=venue-gateway",
        )
    ]
    rules = list(gateway)
    if purposes & SESSION_PURPOSES:
        rules += [
            _rule(
                "VenueSessionDown",
                f"max by (venue, environment, service) (vcpl_session_in_window{{{sel}}}) == 1"
                f" unless on (venue, environment, service) max by (venue, environment, service) (vcpl_session_logged_on{{{sel}}}) == 1",
                "1m",
                "critical",
                f"{venue} {env}: session {{{{ $labels.service }}}} is not logged on inside its trading window",
                "Check the gateway log for the Logout or reject reason before reconnecting.",
            ),
            _rule(
                "VenueHeartbeatTimeout",
                f"increase(vcpl_session_heartbeat_timeouts_total{{{sel}}}[5m]) > 0",
                "0m",
                "warning",
                f"{venue} {env}: session {{{{ $labels.service }}}} missed heartbeats or test requests",
                "Check the network path and the venue's status page; a second lapse disconnects.",
            ),
            _rule(
                "VenueSequenceGap",
                f"increase(vcpl_session_sequence_gaps_total{{{sel}}}[5m]) > 0",
                "0m",
                "warning",
                f"{venue} {env}: session {{{{ $labels.service }}}} detected a sequence gap",
                "Confirm the resend or retransmission completed; reconcile orders if it did not.",
            ),
            _rule(
                "VenueLogonRejected",
                f"increase(vcpl_session_logon_rejects_total{{{sel}}}[10m]) > 0",
                "0m",
                "critical",
                f"{venue} {env}: the venue rejected a logon of session {{{{ $labels.service }}}}",
                "Stop reconnect attempts and check credentials: repeated bad logons can close the port.",
            ),
        ]
    if has_multicast:
        rules += [
            _rule(
                "VenueFeedLineDown",
                f"max by (venue, environment, service, channel, line) (vcpl_feed_line_up{{{sel}}}) == 0"
                f" and on (venue, environment, service) group_left max by (venue, environment, service) (vcpl_session_in_window{{{sel}}}) == 1",
                "30s",
                "warning",
                f"{venue} {env}: line {{{{ $labels.line }}}} of channel {{{{ $labels.channel }}}} is down; running without redundancy",
                "Check IGMP membership and the feed interface; arbitration is running on one line.",
            ),
            _rule(
                "VenueFeedBothLinesDown",
                f"max by (venue, environment, service, channel) (vcpl_feed_line_up{{{sel}}}) == 0",
                "10s",
                "critical",
                f"{venue} {env}: both A and B lines of channel {{{{ $labels.channel }}}} are down",
                "Start recovery (snapshot or replay) and check the cross-connect.",
            ),
            _rule(
                "VenueFeedGaps",
                f"sum by (venue, environment, service, channel) (rate(vcpl_feed_gap_packets_total{{{sel}}}[1m])) > 0",
                "2m",
                "warning",
                f"{venue} {env}: channel {{{{ $labels.channel }}}} has unrecovered packet gaps on both lines",
                "Check recovery requests and NIC drops (ethtool -S) on the feed interfaces.",
            ),
        ]
    return [{"name": f"vcpl-{venue}-{env}", "rules": rules}]
