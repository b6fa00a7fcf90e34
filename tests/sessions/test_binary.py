"""Binary order-entry sessions rehearsed in the real sandbox (vcpl.sessions.binary), and shown to
fail on broken copies of an overlay."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from vcpl.sessions import sandbox
from vcpl.sessions.site import Finding

from .overlays import config_patch, json_edit, overlay_copy, statefulset_patch


def _run(venue: str, env: str, overlay: Path | None = None) -> list[Finding]:
    return sandbox.run(venue, env, families=["binary"], overlay=overlay).findings


def _broken(tmp_path: Path, venue: str, env: str, gateway: Callable[[dict[str, Any]], None] | None = None,
            json6902: list[dict[str, Any]] | None = None) -> Path:
    """The overlay with its gateway.json mutated by `gateway` and/or its StatefulSet patched."""
    patches = [config_patch(venue, env, "gateway.json", json_edit(gateway))] if gateway else []
    patches += [statefulset_patch(json6902)] if json6902 else []
    return overlay_copy(tmp_path, venue, env, patches)


def _service(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["services"] if s["name"] == name)


def _failed(findings: list[Finding], venue: str, env: str, check: str, field_part: str) -> Finding:
    hits = [f for f in findings if not f.ok and f.venue == venue and f.env == env and f.check == check and field_part in f.field]
    assert hits, f"no failed {check} naming {field_part!r}:\n" + "\n".join(map(str, findings))
    return hits[0]


@pytest.mark.parametrize("venue,env", [("nasdaq", "dev"), ("cme", "dev"), ("b3", "cert"), ("cboe", "prod")])
def test_rendered_overlay_rehearses_clean(venue: str, env: str) -> None:
    findings = _run(venue, env)
    checks = {f.check for f in findings}
    assert {"logon", "heartbeat", "liveness", "failover-order", "sequence", "restart", "reconnect-policy"} <= checks
    assert all(f.ok for f in findings), "\n".join(map(str, findings))


def test_heartbeat_outside_bounds_fails(tmp_path: Path) -> None:
    overlay = _broken(tmp_path, "nasdaq", "dev", gateway=lambda d: _service(d, "ouch")["heartbeat"].update(interval=3))
    f = _failed(_run("nasdaq", "dev", overlay), "nasdaq", "dev", "heartbeat", "services[ouch].heartbeat.interval")
    assert "1 s" in f.detail


def test_fixp_keepalive_outside_bounds_fails(tmp_path: Path) -> None:
    # 120000 ms does not fit iLink 3's uInt16 KeepAliveInterval (max 65535 in the run book).
    overlay = _broken(tmp_path, "cme", "dev", gateway=lambda d: _service(d, "ilink3")["heartbeat"].update(interval=120000))
    f = _failed(_run("cme", "dev", overlay), "cme", "dev", "heartbeat", "services[ilink3].heartbeat.interval")
    assert "KeepAliveInterval" in f.detail


def test_fixp_keepalive_below_bounds_is_rejected(tmp_path: Path) -> None:
    # B3 bounds are 1000-60000 ms: the venue refuses the Establish.
    overlay = _broken(tmp_path, "b3", "cert", gateway=lambda d: _service(d, "entrypoint")["heartbeat"].update(interval=500))
    f = _failed(_run("b3", "cert", overlay), "b3", "cert", "logon", "services[entrypoint].heartbeat.interval")
    assert "KeepAliveInterval 500 ms" in f.detail


def test_backup_ordered_first_fails(tmp_path: Path) -> None:
    overlay = _broken(tmp_path, "nasdaq", "dev", gateway=lambda d: _service(d, "ouch")["endpoints"].reverse())
    f = _failed(_run("nasdaq", "dev", overlay), "nasdaq", "dev", "failover-order", "services[ouch].endpoints[0]")
    assert "backup" in f.detail


def test_storming_reconnect_plan_fails(tmp_path: Path) -> None:
    def storm(d: dict[str, Any]) -> None:
        d["failover"]["reconnect"] = {"steps": [{"attempts": 50, "intervalSeconds": 1}], "then": "repeat"}
    f = _failed(_run("cme", "dev", _broken(tmp_path, "cme", "dev", gateway=storm)), "cme", "dev", "reconnect-policy", "failover.reconnect")
    assert "allows 3" in f.detail


def test_emptydir_state_fails(tmp_path: Path) -> None:
    ops = [{"op": "remove", "path": "/spec/volumeClaimTemplates"},
           {"op": "add", "path": "/spec/template/spec/volumes/-", "value": {"name": "session-state", "emptyDir": {}}}]
    f = _failed(_run("nasdaq", "dev", _broken(tmp_path, "nasdaq", "dev", json6902=ops)), "nasdaq", "dev", "restart", "emptyDir")
    assert "/var/lib/venue-gateway" in f.field
