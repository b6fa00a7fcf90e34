"""Grafana dashboards per archetype, generated into components/observability/dashboards/.

One dashboard per way of connecting (FIX order entry, multicast market data, WebSocket market
data) rather than per venue: the `venue` and `environment` variables pick the gateway, and every
query filters on both so a panel never mixes venues. Queries use only the gateway metric contract
(alerts.GATEWAY_METRICS) and the schedule's recording rules, and the tests hold them to the metric
names the alert rules use, so a renamed metric breaks a test instead of a panel. The JSON is
written with sorted keys and a fixed indent, so `--check` compares files byte for byte.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from vcpl import alerts, generate, paths, schedule

DASHBOARDS = paths.COMPONENTS / "observability" / "dashboards"
SEL = 'venue="$venue",environment="$environment"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_WIDTH, PANEL_HEIGHT, COLUMNS = 12, 8, 2
METRIC_NAME = re.compile(r"vcpl_[a-z_]+|vcpl:[a-z_:]+")
# Gauges 0/1 read better as named states than as a line between 0 and 1.
UP_DOWN = {"0": {"color": "red", "index": 0, "text": "down"}, "1": {"color": "green", "index": 1, "text": "up"}}
OPEN_CLOSED = {"0": {"color": "text", "index": 0, "text": "closed"}, "1": {"color": "green", "index": 1, "text": "open"}}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # Grafana panel type: state-timeline or timeseries
    queries: tuple[Query, ...]
    description: str
    unit: str = "short"
    states: dict[str, Any] | None = None
    threshold: float | None = None  # drawn as a red line where the matching alert fires


@dataclass(frozen=True)
class Dashboard:
    name: str
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)

    @property
    def uid(self) -> str:
        return f"vcpl-{self.name}"


# ---------------------------------------------------------------- panels shared by dashboards


def _window_panel() -> Panel:
    return Panel(
        "Session window", "state-timeline",
        (Query(f"max({schedule.WINDOW}{{{SEL}}})", "window"),),
        "The run book's schedule: session alerts only fire while the window is open.",
        states=OPEN_CLOSED,
    )


def _logged_on_panel() -> Panel:
    return Panel(
        "Session logged on", "state-timeline",
        (Query(f"max by (service) (vcpl_session_logged_on{{{SEL}}})", "{{service}}"),),
        "Whether each session is logged on; for order-entry and drop-copy sessions VenueSessionDown fires when one is down inside the window.",
        states=UP_DOWN,
    )


def _heartbeat_panel() -> Panel:
    return Panel(
        "Heartbeat timeouts (5m)", "timeseries",
        (Query(f"sum by (service) (increase(vcpl_session_heartbeat_timeouts_total{{{SEL}}}[5m]))", "{{service}}"),),
        "Missed heartbeats or test requests; one more lapse usually disconnects the session.",
    )


# ---------------------------------------------------------------- the three dashboards


def fix_order_entry() -> Dashboard:
    return Dashboard("fix-order-entry", "Venue FIX order entry", "Order-entry sessions (FIX, FIXP, SoupBinTCP): session state, sequencing and the network path.", (
        _logged_on_panel(),
        _window_panel(),
        _heartbeat_panel(),
        Panel("Sequence gaps (5m)", "timeseries",
              (Query(f"sum by (service) (increase(vcpl_session_sequence_gaps_total{{{SEL}}}[5m]))", "{{service}}"),),
              "Inbound sequence gaps; each should be followed by a completed resend."),
        Panel("Resend requests per minute", "timeseries",
              (Query(f"sum by (service) (rate(vcpl_session_resend_requests_total{{{SEL}}}[5m])) * 60", "{{service}}"),),
              "Resend requests sent and received; above the line VenueResendStorm fires.",
              threshold=alerts.RESEND_STORM_PER_MINUTE),
        Panel("Logon rejects (10m)", "timeseries",
              (Query(f"sum by (service) (increase(vcpl_session_logon_rejects_total{{{SEL}}}[10m]))", "{{service}}"),),
              "Logons the venue rejected; repeated rejects can close the port."),
        Panel("Egress path up", "state-timeline",
              (Query(f"max(vcpl_egress_path_up{{{SEL}}})", "egress"),),
              "TCP connect to the primary endpoint from the allow-listed egress IP; no data where the run book pins no source IP.",
              states=UP_DOWN),
        Panel("VPN tunnel up", "state-timeline",
              (Query(f"max(vcpl_vpn_tunnel_up{{{SEL}}})", "tunnel"),),
              "IPsec child SA to the venue; no data unless the network path is ipsec-vpn.",
              states=UP_DOWN),
    ))


def multicast_market_data() -> Dashboard:
    return Dashboard("multicast-market-data", "Venue multicast market data", "A/B multicast feeds: line state, gaps after arbitration and staleness per channel.", (
        Panel("Feed lines up", "state-timeline",
              (Query(f"max by (channel, line) (vcpl_feed_line_up{{{SEL}}})", "ch {{channel}} line {{line}}"),),
              "Packets arriving per channel and line; with one line down arbitration has no spare.",
              states=UP_DOWN),
        Panel("Gap packets per second", "timeseries",
              (Query(f"sum by (channel) (rate(vcpl_feed_gap_packets_total{{{SEL}}}[1m]))", "ch {{channel}}"),),
              "Packets missing on both lines after A/B arbitration; recovery has to fill them.",
              unit="pps"),
        Panel("Seconds since last packet", "timeseries",
              (Query(f"time() - max by (channel) (vcpl_feed_last_packet_timestamp_seconds{{{SEL}}})", "ch {{channel}}"),),
              "Venues heartbeat every second; above the line VenueFeedStale fires.",
              unit="s", threshold=alerts.FEED_STALE_SECONDS),
        _window_panel(),
    ))


def websocket_market_data() -> Dashboard:
    return Dashboard("websocket-market-data", "Venue WebSocket market data", "WebSocket feeds over the internet: connection state, liveness and reconnects.", (
        _logged_on_panel(),
        _heartbeat_panel(),
        Panel("Seconds since last message", "timeseries",
              (Query(f"time() - max by (service) (vcpl_feed_last_packet_timestamp_seconds{{{SEL}}})", "{{service}}"),),
              "Time since the last message on the connection; venue heartbeats keep it near zero.",
              unit="s", threshold=alerts.FEED_STALE_SECONDS),
        Panel("Reconnects (15m)", "timeseries",
              (Query(f"sum by (service) (changes(vcpl_session_logged_on{{{SEL}}}[15m]))", "{{service}} logged-on changes"),
               Query(f"sum by (service) (increase(vcpl_session_logon_rejects_total{{{SEL}}}[15m]))", "{{service}} rejected")),
              "Changes of the logged-on state (a reconnect is a drop and a logon) and connections the venue rejected."),
        _window_panel(),
    ))


def all_dashboards() -> list[Dashboard]:
    return [fix_order_entry(), multicast_market_data(), websocket_market_data()]


# ---------------------------------------------------------------- Grafana JSON


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.states:
        defaults["mappings"] = [{"options": panel.states, "type": "value"}]
    if panel.threshold is not None:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "green", "value": None},
            {"color": "red", "value": panel.threshold},
        ]}
    return {"defaults": defaults, "overrides": []}


def _panel_json(panel: Panel, index: int) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "description": panel.description,
        "fieldConfig": _field_config(panel),
        "gridPos": {
            "h": PANEL_HEIGHT,
            "w": PANEL_WIDTH,
            "x": (index % COLUMNS) * PANEL_WIDTH,
            "y": (index // COLUMNS) * PANEL_HEIGHT,
        },
        "id": index + 1,
        "targets": [
            {"datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend, "refId": chr(ord("A") + i)}
            for i, q in enumerate(panel.queries)
        ],
        "title": panel.title,
        "type": panel.kind,
    }


def _query_variable(name: str, query: str) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "definition": query,
        "includeAll": False,
        "multi": False,
        "name": name,
        "query": {"query": query, "refId": name},
        "refresh": 2,  # on time-range change, so a newly onboarded venue appears without a reload
        "sort": 1,
        "type": "query",
    }


def _templating() -> dict[str, Any]:
    # The session window exists for every venue and environment whose rules are loaded, whatever
    # its archetype, so it is the one series that always lists them.
    return {"list": [
        {"name": "datasource", "query": "prometheus", "type": "datasource"},
        _query_variable("venue", f"label_values({schedule.WINDOW}, venue)"),
        _query_variable("environment", f'label_values({schedule.WINDOW}{{venue="$venue"}}, environment)'),
    ]}


def to_json(dashboard: Dashboard) -> dict[str, Any]:
    return {
        "description": dashboard.description,
        "editable": False,
        "panels": [_panel_json(panel, index) for index, panel in enumerate(dashboard.panels)],
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["vcpl", dashboard.name],
        "templating": _templating(),
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "title": dashboard.title,
        "uid": dashboard.uid,
        "version": 1,
    }


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def planned() -> dict[Path, str]:
    return {DASHBOARDS / f"{d.name}.json": dump(to_json(d)) for d in all_dashboards()}


# ---------------------------------------------------------------- checks on dashboard JSON


def panel_exprs(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query in a dashboard, rows' nested panels included."""
    for panel in data.get("panels", []):
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []):
                if "expr" in target:
                    yield nested.get("title", "?"), target["expr"]


def metric_names(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


def metric_problems(data: dict[str, Any], gateway: Iterable[str], recorded: Iterable[str], alerted: Iterable[str]) -> list[str]:
    """Metrics a dashboard queries that are outside the contract, or that no alert rule uses.

    gateway: the metric contract; recorded: recording-rule names in the rendered rules; alerted:
    metric names appearing in rendered alert expressions.
    """
    gateway, recorded, alerted = set(gateway), set(recorded), set(alerted)
    problems = []
    for title, expr in panel_exprs(data):
        for name in sorted(metric_names(expr)):
            if name not in gateway and name not in recorded:
                problems.append(f"{data.get('uid')}: panel '{title}': {name} is neither a gateway metric nor a recording rule")
            elif name in gateway and name not in alerted:
                problems.append(f"{data.get('uid')}: panel '{title}': {name} is not used by any alert rule")
    return problems


def selector_problems(data: dict[str, Any]) -> list[str]:
    """Every query must be scoped to the selected venue and environment, and both variables must exist."""
    names = {v.get("name") for v in data.get("templating", {}).get("list", [])}
    problems = [f"{data.get('uid')}: variable '{n}' is missing" for n in ("venue", "environment") if n not in names]
    for title, expr in panel_exprs(data):
        for needed in ("$venue", "$environment"):
            if needed not in expr:
                problems.append(f"{data.get('uid')}: panel '{title}': query does not filter on {needed}: {expr}")
    return problems


def stale(files: dict[Path, str]) -> list[str]:
    return generate.differences(files, list(DASHBOARDS.glob("*.json")), "scripts/vcpl/dashboards.py")


def _cmd(args: argparse.Namespace) -> int:
    return generate.check_or_write(planned(), args.check, "dashboards", "make generate", list(DASHBOARDS.glob("*.json")), "scripts/vcpl/dashboards.py")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("dashboards", help="write the per-archetype Grafana dashboards into components/observability/dashboards")
    p.add_argument("--check", action="store_true", help="fail if the checked-in dashboards are out of date")
    p.set_defaults(func=_cmd)
