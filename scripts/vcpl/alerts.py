"""Venue-session alert rules, derived from the run book: its services, schedule, network path,
TLS and clock-sync requirements.

The gateway metrics below are the contract a gateway image must expose (documented in
components/observability/README.md). Every series carries `venue` and `environment`, added by the
ServiceMonitor's relabelings, so one overlay's rules only see its own gateway. Session and feed
alerts are gated on the run book's session window (schedule.py): silent when the venue is closed,
in a daily break or in a maintenance window.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vcpl import protocols, schedule
from vcpl.runbook import Runbook, allowlisted_network, vpn_network

SESSION_PURPOSES = {"order-entry", "drop-copy"}
CERT_EXPIRY_WARNING_DAYS = 14
RESEND_STORM_PER_MINUTE = 10
FEED_STALE_SECONDS = 10
# Share of a recovery service's daily request allowance after which the gateway warns.
RECOVERY_QUOTA_WARNING = 0.8

# name -> (type, meaning): the gateway's metric contract.
GATEWAY_METRICS = {
    "vcpl_session_logged_on": ("gauge 0/1", "the session is logged on"),
    "vcpl_session_heartbeat_timeouts_total": ("counter", "heartbeat or test-request timeouts"),
    "vcpl_session_sequence_gaps_total": ("counter", "inbound sequence gaps detected"),
    "vcpl_session_resend_requests_total": ("counter", "resend or retransmission requests sent and received"),
    "vcpl_session_logon_rejects_total": ("counter", "logons the venue rejected"),
    "vcpl_session_throttle_rejects_total": ("counter", "messages the venue rejected for exceeding its throttle"),
    "vcpl_session_throttle_limit_messages": ("gauge", "messages per throttle interval the venue announced at logon"),
    "vcpl_recovery_requests_total": ("counter", "requests sent to a recovery service (label recovery: its index in the run book)"),
    "vcpl_feed_line_up": ("gauge 0/1", "packets are arriving on the line"),
    "vcpl_feed_gap_packets_total": ("counter", "packets missing on both lines after A/B arbitration"),
    "vcpl_feed_last_packet_timestamp_seconds": ("gauge", "unix time of the last packet on the channel"),
    "vcpl_vpn_tunnel_up": ("gauge 0/1", "the IPsec child SA to the venue is installed"),
    "vcpl_egress_path_up": ("gauge 0/1", "a TCP connect to the primary endpoint succeeds from the pinned egress IP"),
}


@dataclass(frozen=True)
class Context:
    venue: str
    env: str
    namespace: str

    @property
    def sel(self) -> str:
        return f'venue="{self.venue}",environment="{self.env}"'

    @property
    def in_window(self) -> str:
        return f"and on (venue, environment) {schedule.WINDOW}{{{self.sel}}} == 1"


def _rule(ctx: Context, alert: str, expr: str, for_: str, severity: str, summary: str, action: str, **extra_labels: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **extra_labels},
        "annotations": {
            "summary": f"{ctx.venue} {ctx.env}: {summary}",
            "action": action,
            "runbook": f"docs/runbooks/{ctx.venue}.md#{alert.lower()}",
        },
    }


def _gateway_rules(ctx: Context) -> list[dict[str, Any]]:
    return [
        _rule(ctx, "VenueGatewayDown", f'up{{{ctx.sel},job="venue-gateway"}} == 0 {ctx.in_window}', "2m", "critical",
              "the gateway's metrics endpoint is unreachable inside the session window",
              "kubectl -n {{ $labels.namespace }} describe pod -l app.kubernetes.io/name=venue-gateway; check the last restart reason."),
        _rule(ctx, "VenueGatewayAbsent", f'absent(up{{{ctx.sel},job="venue-gateway"}}) {ctx.in_window}', "5m", "critical",
              "no gateway is running although the session window is open",
              "Check that the session-schedule CronJob scaled the StatefulSet up, then the pod events."),
    ]


def _session_rules(ctx: Context, sequenced: bool) -> list[dict[str, Any]]:
    by = "max by (venue, environment, service)"
    rules = [
        _rule(ctx, "VenueSessionDown", f"{by} (vcpl_session_logged_on{{{ctx.sel}}}) == 0 {ctx.in_window}", "1m", "critical",
              "session {{ $labels.service }} is not logged on inside the trading window",
              "Read the gateway log for the Logout text or reject reason before any reconnect."),
        _rule(ctx, "VenueHeartbeatTimeout", f"increase(vcpl_session_heartbeat_timeouts_total{{{ctx.sel}}}[5m]) > 0 {ctx.in_window}", "0m", "warning",
              "session {{ $labels.service }} missed heartbeats or test requests",
              "Check the network path and the venue status page; a second lapse disconnects the session."),
    ]
    if sequenced:
        rules += [
            _rule(ctx, "VenueSequenceGap", f"increase(vcpl_session_sequence_gaps_total{{{ctx.sel}}}[5m]) > 0 {ctx.in_window}", "0m", "warning",
                  "session {{ $labels.service }} detected an inbound sequence gap",
                  "Confirm the resend completed; reconcile open orders with the venue if it did not."),
            _rule(ctx, "VenueResendStorm", f"rate(vcpl_session_resend_requests_total{{{ctx.sel}}}[5m]) * 60 > {RESEND_STORM_PER_MINUTE} {ctx.in_window}", "5m", "warning",
                  f"session {{{{ $labels.service }}}} exchanges more than {RESEND_STORM_PER_MINUTE} resend requests a minute",
                  "Look for a store corrupted by a restart; a manual sequence reset may be needed (coordinate with the venue)."),
        ]
    rules += [
        _rule(ctx, "VenueLogonRejected", f"increase(vcpl_session_logon_rejects_total{{{ctx.sel}}}[10m]) > 0", "0m", "critical",
              "the venue rejected a logon of session {{ $labels.service }}",
              "Stop reconnect attempts and check credentials and source IP: repeated bad logons can close the port."),
    ]
    return rules


def _throttle_rules(ctx: Context, rb: Runbook) -> list[dict[str, Any]]:
    rules = []
    for service in rb["services"]:
        throttle = service.get("throttle")
        if not throttle:
            continue
        sel = f'{ctx.sel},service="{service["name"]}"'
        limit = f"{throttle['messages']} messages per {throttle['intervalMs']} ms"
        disconnect = (f"; the venue disconnects after {throttle['rejectsBeforeDisconnect']} rejects"
                      if "rejectsBeforeDisconnect" in throttle else "")
        rules.append(_rule(ctx, "VenueThrottleRejects", f"increase(vcpl_session_throttle_rejects_total{{{sel}}}[5m]) > 0", "0m", "warning",
                           f"session {service['name']} sends faster than the venue's throttle ({limit}){disconnect}",
                           "Find the strategy that bursts; pace it below the throttle before the venue disconnects the session."))
        if throttle.get("announcedAtLogon"):
            rules.append(_rule(ctx, "VenueThrottleChanged", f"max by (venue, environment, service) (vcpl_session_throttle_limit_messages{{{sel}}}) != {throttle['messages']}", "0m", "warning",
                               f"the venue announced a throttle for session {service['name']} other than the run book's {limit}",
                               "Confirm the new limit with the venue and update the run book's throttle."))
    return rules


def _recovery_rules(ctx: Context, rb: Runbook, env: str) -> list[dict[str, Any]]:
    rules = []
    for service in rb["services"]:
        for index, item in enumerate(service["environments"][env].get("recovery", [])):
            quota = item.get("limits", {}).get("requestsPerDay")
            if quota is None:
                continue
            threshold = int(quota * RECOVERY_QUOTA_WARNING)
            sel = f'{ctx.sel},service="{service["name"]}",recovery="{index}"'
            rules.append(_rule(ctx, "VenueRecoveryQuotaLow", f"increase(vcpl_recovery_requests_total{{{sel}}}[1d]) > {threshold}", "0m", "warning",
                               f"{service['name']} {item['kind']} requests today are above {threshold} of the venue's {quota} a day",
                               "Find what loses packets (both feed lines, NIC drops) before the venue blocks further requests today."))
    return rules


def stale_after(rb: Runbook) -> int:
    """Seconds of silence before a feed or stream counts as stale: three of the venue's market-data
    heartbeat intervals, and never less than FEED_STALE_SECONDS."""
    intervals = [
        s["heartbeat"]["default"] / (1000 if s["heartbeat"]["unit"] == "ms" else 1)
        for s in rb["services"]
        if s["purpose"] == "market-data" and "heartbeat" in s
    ]
    return int(max([FEED_STALE_SECONDS] + [3 * i for i in intervals]))


def _feed_rules(ctx: Context, stale: int) -> list[dict[str, Any]]:
    return [
        _rule(ctx, "VenueFeedLineDown", f"max by (venue, environment, service, channel, line) (vcpl_feed_line_up{{{ctx.sel}}}) == 0 {ctx.in_window}", "30s", "warning",
              "line {{ $labels.line }} of channel {{ $labels.channel }} is down; arbitration runs on one line",
              "Check IGMP membership (ip maddr) and drops on the feed interface of that line."),
        _rule(ctx, "VenueFeedBothLinesDown", f"max by (venue, environment, service, channel) (vcpl_feed_line_up{{{ctx.sel}}}) == 0 {ctx.in_window}", "10s", "critical",
              "both A and B lines of channel {{ $labels.channel }} are down",
              "Start recovery (snapshot or replay) and check the cross-connect."),
        _rule(ctx, "VenueFeedGaps", f"sum by (venue, environment, service, channel) (rate(vcpl_feed_gap_packets_total{{{ctx.sel}}}[5m])) > 0 {ctx.in_window}", "2m", "warning",
              "channel {{ $labels.channel }} has packet gaps neither line could fill",
              "Check recovery requests and NIC drops (ethtool -S) on both feed interfaces."),
        _rule(ctx, "VenueFeedStale", f"time() - max by (venue, environment, service, channel) (vcpl_feed_last_packet_timestamp_seconds{{{ctx.sel}}}) > {stale} {ctx.in_window}", "1m", "critical",
              f"channel {{{{ $labels.channel }}}} has received nothing for more than {stale} s (three heartbeat intervals)",
              "Check both lines and the venue status page; consumers are trading on a stale book."),
    ]


def _stream_rules(ctx: Context, stale: int) -> list[dict[str, Any]]:
    return [
        _rule(ctx, "VenueStreamStale", f"time() - max by (venue, environment, service) (vcpl_feed_last_packet_timestamp_seconds{{{ctx.sel}}}) > {stale} {ctx.in_window}", "1m", "critical",
              f"WebSocket stream {{{{ $labels.service }}}} has delivered nothing for more than {stale} s (three heartbeat intervals)",
              "Reconnect and resubscribe; rebuild books from the snapshot before trusting them."),
    ]


def _platform_rules(ctx: Context, rb: Runbook, env: str) -> list[dict[str, Any]]:
    rules = []
    primary = rb["environments"][env]["networks"][0]
    vpn, allowlisted = vpn_network(rb, env), allowlisted_network(rb, env)
    labels = {"venue": ctx.venue, "environment": ctx.env}
    if any(s.get("tls", {}).get("clientCertificate") for s in rb["services"]):
        rules.append(_rule(ctx, "VenueCertificateExpiring",
                           f'certmanager_certificate_expiration_timestamp_seconds{{namespace="{ctx.namespace}",name="venue-client-tls"}} - time() < {CERT_EXPIRY_WARNING_DAYS} * 86400',
                           "1h", "warning", f"the client certificate expires within {CERT_EXPIRY_WARNING_DAYS} days",
                           "kubectl describe certificate venue-client-tls; check the issuer and cert-manager logs.", **labels))
    # A path that only backs up another one is a warning: the venue is still reachable.
    if vpn:
        rules.append(_rule(ctx, "VenueVpnTunnelDown", f"max by (venue, environment) (vcpl_vpn_tunnel_up{{{ctx.sel}}}) == 0 {ctx.in_window}", "1m",
                           "critical" if vpn is primary else "warning",
                           "the IPsec tunnel to the venue is down" + ("" if vpn is primary else " (the backup path)"),
                           "swanctl --list-sas in the strongswan container; check the peer and the PSK."))
    if allowlisted:
        rules.append(_rule(ctx, "VenueEgressPathDown", f"max by (venue, environment) (vcpl_egress_path_up{{{ctx.sel}}}) == 0 {ctx.in_window}", "2m",
                           "critical" if allowlisted is primary else "warning",
                           "the venue is unreachable from the allow-listed egress IP",
                           "Check the CiliumEgressGatewayPolicy status and that a gateway node holds the egress IP."))
    return rules


def clock_rule_groups(rb: Runbook, env: str, namespace: str) -> list[dict[str, Any]]:
    """The RTS 25 offset alert, shipped by the clock-sync component where the run book requires it."""
    clock = rb["clockSync"]
    if not clock["required"]:
        return []
    ctx = Context(rb["venue"]["id"], env, namespace)
    limit_ns = clock["maxDivergenceMicros"] * 1000
    rule = _rule(ctx, "VenueClockOffset",
                 f'max by (node) (abs(openshift_ptp_offset_ns{{process="phc2sys"}})) > {limit_ns}'
                 f' and on (node) max by (node) (kube_pod_info{{namespace="{namespace}",pod=~"venue-gateway-.*"}})',
                 "1m", "critical", f"a gateway node's clock is more than {clock['maxDivergenceMicros']} µs from UTC (RTS 25)",
                 "Check ptp4l and phc2sys on {{ $labels.node }}; timestamps taken there are out of tolerance.",
                 venue=ctx.venue, environment=env)
    return [{"name": f"vcpl-{ctx.venue}-{env}-clock-sync", "rules": [rule]}]


def alert_rules(rb: Runbook, env: str, namespace: str) -> list[dict[str, Any]]:
    """The alerting rules the run book's services, network path and TLS imply for one overlay."""
    ctx = Context(rb["venue"]["id"], env, namespace)
    purposes = {s["purpose"] for s in rb["services"]}
    has_multicast = any(s["environments"][env].get("channels") for s in rb["services"])
    has_stream = any(protocols.layer(s["protocol"]["sessionLayer"])["transport"] == "websocket" for s in rb["services"])
    alerts = _gateway_rules(ctx)
    # A WebSocket feed is a session too: connected (logged on), heartbeats, rejected handshakes.
    # Gap and resend alerts only where some session has sequence numbers (not Kraken's checksummed feed):
    # every cadence but none (weekly, daily, per-connection, per-product) is sequenced.
    sequenced = any(s.get("sequenceReset", {}).get("cadence", "none") != "none" for s in rb["services"])
    if purposes & SESSION_PURPOSES or has_stream:
        alerts += _session_rules(ctx, sequenced) + _throttle_rules(ctx, rb)
    if has_multicast:
        alerts += _feed_rules(ctx, stale_after(rb))
    if has_stream:
        alerts += _stream_rules(ctx, stale_after(rb))
    return alerts + _recovery_rules(ctx, rb, env) + _platform_rules(ctx, rb, env)


def rule_groups(rb: Runbook, env: str, namespace: str) -> list[dict[str, Any]]:
    venue = rb["venue"]["id"]
    alerts = alert_rules(rb, env, namespace)
    return [
        {"name": f"vcpl-{venue}-{env}-schedule", "rules": schedule.recording_rules(rb["schedule"], {"venue": venue, "environment": env})},
        {"name": f"vcpl-{venue}-{env}", "rules": alerts},
    ]
