"""Feed family: real sandbox rehearsals of rendered overlays, and broken copies of them that the
rehearsal must catch, naming venue, environment and the rendered field at fault."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vcpl.sessions import sandbox
from vcpl.sessions.site import Finding

from .overlays import config_patch, json_edit, overlay_copy

CHECKS = {"lines", "arbitration", "recovery", "heartbeat", "line-loss", "delivery"}


def _run(venue: str, env: str, overlay: Path | None = None) -> sandbox.Result:
    return sandbox.run(venue, env, families=["feed"], overlay=overlay, timeout=120)


def _failed(findings: list[Finding], venue: str, env: str, field: str) -> list[Finding]:
    return [f for f in findings if not f.ok and f.venue == venue and f.env == env and f.field == field]


@pytest.mark.parametrize(("venue", "env", "kinds"), [
    ("nasdaq", "dev", ["udp-rerequest", "tcp-snapshot"]),
    ("cme", "dev", ["tcp-replay"]),
    ("nyse", "dev", ["multicast-retransmission"]),
    ("hkex", "prod", ["tcp-replay"]),
])
def test_rendered_overlay_rehearses_clean(venue: str, env: str, kinds: list[str]) -> None:
    result = _run(venue, env)
    bad = [str(f) for f in result.findings if not f.ok]
    assert not bad, "\n".join(bad) + "\n" + result.log[-2000:]
    assert {f.check for f in result.findings} == CHECKS
    recovery = [f for f in result.findings if f.check == "recovery"]
    assert len(recovery) == len(kinds)
    for finding, kind in zip(recovery, kinds):
        assert kind in finding.detail
    # The client's metrics: line b went down and came back; each recovery entry was asked.
    line_b = [v for _, name, labels, v in result.samples if name == "vcpl_feed_line_up" and ("line", "b") in labels]
    assert 0 in line_b[1:] and line_b[-1] == 1
    asked = {dict(labels)["recovery"] for _, name, labels, _ in result.samples if name == "vcpl_recovery_requests_total"}
    assert asked == {str(i) for i in range(len(kinds))}
    assert any(name == "vcpl_feed_gap_packets_total" for _, name, _, _ in result.samples)
    assert any(name == "vcpl_feed_last_packet_timestamp_seconds" for _, name, _, _ in result.samples)


def _broken_overlay(tmp_path: Path, venue: str, env: str, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """The overlay with its channels.json mutated."""
    return overlay_copy(tmp_path, venue, env, [config_patch(venue, env, "channels.json", json_edit(mutate))])


def _b_group(doc: dict[str, Any]) -> None:
    doc["channels"][0]["b"]["group"] = "239.254.9.9"


def _swap_interfaces(doc: dict[str, Any]) -> None:
    ch = doc["channels"][0]
    ch["a"]["interface"], ch["b"]["interface"] = ch["b"]["interface"], ch["a"]["interface"]


def _a_port(doc: dict[str, Any]) -> None:
    doc["channels"][0]["a"]["port"] += 7


def _recovery_port(doc: dict[str, Any]) -> None:
    doc["recovery"][0]["port"] += 1


def _retransmission_group(doc: dict[str, Any]) -> None:
    doc["recovery"][0]["a"]["group"] = "239.254.8.8"
    doc["recovery"][0]["b"]["group"] = "239.254.8.9"


@pytest.mark.parametrize(("venue", "env", "mutate", "fields"), [
    ("nasdaq", "dev", _b_group, ["channels.json channels[1].b.group"]),
    ("cme", "dev", _swap_interfaces, ["channels.json channels[348].a.interface", "channels.json channels[348].b.interface"]),
    ("nyse", "prod", _a_port, ["channels.json channels[1].a.port"]),
    ("nasdaq", "dev", _recovery_port, ["channels.json recovery[0].port"]),
    ("cboe", "dev", _retransmission_group, ["channels.json recovery[0].a.group"]),
], ids=["b-group", "interfaces-swapped", "a-port", "recovery-port", "retransmission-group"])
def test_broken_rendering_is_named(tmp_path: Path, venue: str, env: str, mutate: Callable[[dict[str, Any]], None], fields: list[str]) -> None:
    result = _run(venue, env, _broken_overlay(tmp_path, venue, env, mutate))
    for field in fields:
        assert _failed(result.findings, venue, env, field), (
            f"no failed Finding naming {field}:\n" + "\n".join(map(str, result.findings)) + "\n" + result.log[-2000:])
