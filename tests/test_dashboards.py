"""Per-archetype Grafana dashboards: in sync, scoped to one venue and environment, and querying
only metrics the alert rules and recording rules also use."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conftest import Docs
from vcpl import alerts, dashboards

Rendered = dict[tuple[str, str], Docs]
EXPECTED = {"fix-order-entry", "multicast-market-data", "websocket-market-data"}


def _committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(dashboards.DASHBOARDS.glob("*.json"))}


def _rules(rendered: Rendered) -> list[dict[str, Any]]:
    return [
        rule
        for docs in rendered.values()
        for doc in docs if doc["kind"] == "PrometheusRule"
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="module")
def recorded(rendered_overlays: Rendered) -> set[str]:
    return {rule["record"] for rule in _rules(rendered_overlays) if "record" in rule}


@pytest.fixture(scope="module")
def alerted(rendered_overlays: Rendered) -> set[str]:
    # The same parser as the dashboards, so both sides agree on what a metric name is.
    return {name for rule in _rules(rendered_overlays) if "alert" in rule for name in dashboards.metric_names(rule["expr"])}


def test_files_are_valid_json_and_in_sync() -> None:
    problems = dashboards.stale(dashboards.planned())
    assert not problems, "run `vcpl dashboards`:\n" + "\n".join(problems)
    committed = _committed()
    assert set(committed) == EXPECTED
    for name, data in committed.items():
        assert data["uid"] == f"vcpl-{name}"
        assert data["tags"] == ["vcpl", name]


def test_uids_and_panel_ids_are_unique_and_panels_are_placed() -> None:
    committed = _committed()
    uids = [d["uid"] for d in committed.values()]
    assert len(uids) == len(set(uids))
    for name, data in committed.items():
        ids = [p["id"] for p in data["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        boxes = set()
        for panel in data["panels"]:
            grid = panel["gridPos"]
            assert {"h", "w", "x", "y"} <= set(grid) and grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"
            boxes.add((grid["x"], grid["y"]))
        assert len(boxes) == len(data["panels"]), f"{name}: panels overlap"


def test_every_query_is_scoped_to_venue_and_environment() -> None:
    for name, data in _committed().items():
        variables = {v["name"]: v for v in data["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert variables["venue"]["query"]["query"] == "label_values(vcpl:session_window:open, venue)"
        assert variables["environment"]["query"]["query"] == 'label_values(vcpl:session_window:open{venue="$venue"}, environment)'
        assert not dashboards.selector_problems(data), name
        assert list(dashboards.panel_exprs(data)), f"{name} has no queries"


def test_a_query_without_the_environment_filter_is_reported() -> None:
    data = copy.deepcopy(_committed()["fix-order-entry"])
    target = data["panels"][0]["targets"][0]
    target["expr"] = target["expr"].replace(',environment="$environment"', "")
    problems = dashboards.selector_problems(data)
    assert len(problems) == 1 and "$environment" in problems[0]


def test_metrics_are_in_the_contract_and_alerted(recorded: set[str], alerted: set[str]) -> None:
    assert recorded and alerted, "the rendered overlays have no rules"
    for name, data in _committed().items():
        problems = dashboards.metric_problems(data, alerts.GATEWAY_METRICS, recorded, alerted)
        assert not problems, "\n".join(problems)


def test_a_misspelled_or_unalerted_metric_is_reported(recorded: set[str], alerted: set[str]) -> None:
    data = copy.deepcopy(_committed()["multicast-market-data"])
    target = data["panels"][0]["targets"][0]
    target["expr"] = target["expr"].replace("vcpl_feed_line_up", "vcpl_feed_lines_up")
    problems = dashboards.metric_problems(data, alerts.GATEWAY_METRICS, recorded, alerted)
    assert any("vcpl_feed_lines_up is neither" in p for p in problems)
    # A contract metric that no alert rule uses is reported too.
    unalerted = dashboards.metric_problems(_committed()["multicast-market-data"], alerts.GATEWAY_METRICS, recorded, alerted - {"vcpl_feed_gap_packets_total"})
    assert any("vcpl_feed_gap_packets_total is not used by any alert rule" in p for p in unalerted)


def test_metric_names_are_parsed_from_promql() -> None:
    expr = 'time() - max by (channel) (vcpl_feed_last_packet_timestamp_seconds{venue="$venue"}) and vcpl:session_window:open == 1'
    assert dashboards.metric_names(expr) == {"vcpl_feed_last_packet_timestamp_seconds", "vcpl:session_window:open"}


def test_stale_detection_reports_a_changed_dashboard() -> None:
    files = dashboards.planned()
    path = next(iter(files))
    files[path] = files[path].replace('"version": 1', '"version": 2')
    assert f"{path.relative_to(dashboards.paths.ROOT)}: out of date" in dashboards.stale(files)
