"""WebSocket family: real sandbox rehearsals of rendered overlays, and broken copies of them that
the rehearsal must catch, naming venue, environment and the rendered field at fault."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vcpl.sessions import sandbox
from vcpl.sessions.site import Finding

from .overlays import config_patch, json_edit, overlay_copy

CHECKS = {"logon", "heartbeat", "sequence", "reconnect", "reconnect-storm"}


def _run(venue: str, env: str, overlay: Path | None = None) -> sandbox.Result:
    return sandbox.run(venue, env, families=["websocket"], overlay=overlay, timeout=120)


def _failed(findings: list[Finding], venue: str, env: str, field: str) -> list[Finding]:
    return [f for f in findings if not f.ok and f.venue == venue and f.env == env and f.field == field]


def _series(result: sandbox.Result, name: str) -> list[float]:
    return [v for _, n, _, v in result.samples if n == name]


@pytest.mark.parametrize(("venue", "env", "service", "sequenced"), [
    ("kraken", "dev", "ws-v2", False),
    ("kalshi", "dev", "trade-ws", True),
    ("coinbase", "dev", "ws-feed", True),
    ("kalshi", "prod", "trade-ws", True),
])
def test_rendered_overlay_rehearses_clean(venue: str, env: str, service: str, sequenced: bool) -> None:
    result = _run(venue, env)
    bad = [str(f) for f in result.findings if not f.ok]
    assert not bad, "\n".join(bad) + "\n" + result.log[-2000:]
    assert {f.check for f in result.findings} == CHECKS
    assert {f.service for f in result.findings} == {service}
    # The client's metrics, as the gateway records them: down, logged on, dropped by the kill, back
    # on, down again when the rehearsal stops the client.
    logged_on = [v for _, n, labels, v in result.samples if n == "vcpl_session_logged_on" and ("service", service) in labels]
    assert [v for i, v in enumerate(logged_on) if i == 0 or v != logged_on[i - 1]] == [0, 1, 0, 1, 0]
    assert not _series(result, "vcpl_session_heartbeat_timeouts_total")
    assert _series(result, "vcpl_session_resend_requests_total") == [1]
    # Gaps are counted only where the rendering says the stream is sequenced (not Kraken's checksummed book).
    assert _series(result, "vcpl_session_sequence_gaps_total") == ([1] if sequenced else [])
    assert _series(result, "vcpl_feed_last_packet_timestamp_seconds")


def _broken_overlay(tmp_path: Path, venue: str, env: str, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """The overlay with its gateway.json mutated."""
    return overlay_copy(tmp_path, venue, env, [config_patch(venue, env, "gateway.json", json_edit(mutate))])


def _service(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["services"] if s["name"] == name)


def _set_endpoint(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _service(doc, name)["endpoints"][0][key] = value
    return mutate


def _set_heartbeat(name: str, value: int) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _service(doc, name)["heartbeat"]["interval"] = value
    return mutate


def _set_service(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _service(doc, name)[key] = value
    return mutate


def _set_reconnect_interval(value: int) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        doc["failover"]["reconnect"]["steps"][0]["intervalSeconds"] = value
    return mutate


@pytest.mark.parametrize(("venue", "env", "mutate", "check", "field"), [
    # The endpoint the client opens: wrong path (404 from the venue), wrong port (refused).
    ("kraken", "dev", _set_endpoint("ws-v2", "path", "/v1"), "logon", "gateway.json services[ws-v2].endpoints[0].path"),
    ("kalshi", "dev", _set_endpoint("trade-ws", "port", 8444), "logon", "gateway.json services[trade-ws].endpoints[0].port"),
    # Liveness: an app-ping interval the simulator measures too long; a server heartbeat the client
    # expects at another interval than the venue sends.
    ("kraken", "dev", _set_heartbeat("ws-v2", 20), "heartbeat", "gateway.json services[ws-v2].heartbeat.interval"),
    ("coinbase", "dev", _set_heartbeat("ws-feed", 5), "heartbeat", "gateway.json services[ws-feed].heartbeat.interval"),
    # The handshake is not signed: Kalshi refuses it.
    ("kalshi", "dev", _set_service("trade-ws", "authMethod", "none"), "logon", "gateway.json services[trade-ws].authMethod"),
    # A sequenced feed rendered as unsequenced: the lost update goes unnoticed.
    ("coinbase", "dev", _set_service("ws-feed", "sequenceReset", {"cadence": "none"}), "sequence",
     "gateway.json services[ws-feed].sequenceReset.cadence"),
    # Reconnect attempts closer together than the venue's plan: a storm.
    ("coinbase", "dev", _set_reconnect_interval(1), "reconnect-storm", "gateway.json failover.reconnect.steps[0].intervalSeconds"),
])
def test_broken_rendering_is_reported(tmp_path: Path, venue: str, env: str, mutate: Callable[[dict[str, Any]], None], check: str, field: str) -> None:
    result = _run(venue, env, _broken_overlay(tmp_path, venue, env, mutate))
    hits = [f for f in _failed(result.findings, venue, env, field) if f.check == check]
    assert hits, "\n".join(str(f) for f in result.findings) + "\n" + result.log[-2000:]
    assert all(f.venue == venue and f.env == env for f in hits)
