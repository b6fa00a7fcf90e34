"""FIX family: the real QuickFIX engine logs on with what each overlay renders against a QuickFIX
acceptor derived from the run book, and every check is shown to fail on a deliberately broken
copy of an overlay."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vcpl.sessions import fix, sandbox
from vcpl.sessions import site as site_mod

from .gate import gate
from .overlays import config_patch, overlay_copy, statefulset_patch

GOOD = [("coinbase", "dev"), ("ice", "dev"), ("nyse", "dev"), ("ice", "prod"), ("coinbase", "prod"), ("nyse", "prod")]


@pytest.fixture(autouse=True)
def _fix_engine_available() -> None:
    gate(fix.unavailable())


def _session_cfg_patch(tmp: Path, venue: str, env: str, edit: Callable[[str], str]) -> Path:
    return overlay_copy(tmp, venue, env, [config_patch(venue, env, "session.cfg", edit)])


def _replace(old: str, new: str):  # type: ignore[no-untyped-def]
    return lambda text: text.replace(old, new)


def _swap_hosts(text: str) -> str:
    lines = text.splitlines()
    host0 = next(i for i, l in enumerate(lines) if l.startswith("SocketConnectHost="))
    host1 = next(i for i, l in enumerate(lines) if l.startswith("SocketConnectHost1="))
    a, b = lines[host0].partition("=")[2], lines[host1].partition("=")[2]
    lines[host0], lines[host1] = f"SocketConnectHost={b}", f"SocketConnectHost1={a}"
    return "\n".join(lines) + "\n"


def _empty_dir(tmp: Path, venue: str, env: str) -> Path:
    ops = [{"op": "remove", "path": "/spec/volumeClaimTemplates"},
           {"op": "add", "path": "/spec/template/spec/volumes/-", "value": {"name": "session-state", "emptyDir": {}}}]
    return overlay_copy(tmp, venue, env, [statefulset_patch(ops)])


def _rotate_to_dr(text: str) -> str:
    """NYSE prod with its DR endpoint (sequence restarts there, used once NYSE declares DR) put back
    into QuickFIX's own rotation, as the generator rendered it before the rehearsal found it."""
    rb = site_mod.load("nyse", "prod").runbook
    dr = next(s for s in rb["services"] if s["name"] == "pillar-fix")["environments"]["prod"]["endpoints"]["dr"]
    return text.replace("SocketUseSSL=N", f"SocketConnectHost2={dr['host']}\nSocketConnectPort2={dr['port']}\nSocketUseSSL=N", 1)


# name -> (venue, env, overlay builder, field the failing Finding must name)
BROKEN = {
    "window-closes-early": ("nyse", "dev", lambda t: _session_cfg_patch(t, "nyse", "dev", _replace("EndTime=16:00:00", "EndTime=15:00:00")), "session.cfg EndTime"),
    "window-read-in-utc": ("nyse", "dev", lambda t: _session_cfg_patch(t, "nyse", "dev", _replace("UseLocalTime=Y\n", "")), "session.cfg UseLocalTime"),
    "declared-dr-rotated": ("nyse", "prod", lambda t: _session_cfg_patch(t, "nyse", "prod", _rotate_to_dr), "session.cfg SocketConnectHost2"),
    "sender-compid": ("nyse", "dev", lambda t: _session_cfg_patch(t, "nyse", "dev", _replace("SenderCompID=VCPL-NYSE-DEV", "SenderCompID=VCPL-NYSE-XXX")), "session.cfg SenderCompID"),
    "heartbeat-bounds": ("nyse", "dev", lambda t: _session_cfg_patch(t, "nyse", "dev", _replace("HeartBtInt=30", "HeartBtInt=90")), "session.cfg HeartBtInt"),
    "backup-first": ("nyse", "dev", lambda t: _session_cfg_patch(t, "nyse", "dev", _swap_hosts), "session.cfg SocketConnectHost"),
    "emptydir-store": ("nyse", "cert", lambda t: _empty_dir(t, "nyse", "cert"), "session.cfg FileStorePath"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, sandbox.Result]:
    jobs = {f"good-{v}-{e}": (v, e, None) for v, e in GOOD}
    for name, (venue, env, build, _) in BROKEN.items():
        jobs[name] = (venue, env, build(tmp_path_factory.mktemp(name)))
    # The rehearsals mostly wait on QuickFIX timers: several at once keep the module near a minute.
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {k: pool.submit(sandbox.run, v, e, ["fix"], 240, o) for k, (v, e, o) in jobs.items()}
        done: dict[str, sandbox.Result | BaseException] = {}
        for k, f in futures.items():
            try:
                done[k] = f.result()
            except Exception as exc:  # one harness fault fails its own tests, not the module
                done[k] = exc
        return done  # type: ignore[return-value]


def _result(results: dict[str, sandbox.Result], key: str) -> sandbox.Result:
    value = results[key]
    if isinstance(value, BaseException):
        pytest.fail(f"{key}: {value}")
    return value


@pytest.mark.parametrize("venue,env", GOOD)
def test_rendered_overlay_passes(results: dict[str, sandbox.Result], venue: str, env: str) -> None:
    """The QuickFIX C++ engine loads session.cfg as rendered, logs on, heartbeats, answers a test
    request, fails over and reconnects as the run book says; where the venue has a session window,
    it logs out at the close and starts the next session at MsgSeqNum 1."""
    result = _result(results, f"good-{venue}-{env}")
    assert result.findings, result.log[-2000:]
    failed = [str(f) for f in result.findings if not f.ok]
    assert not failed, "\n".join(failed)
    checks = {f.check for f in result.findings}
    assert {"engine-config", "logon", "heartbeat", "test-request", "failover", "reconnect-policy", "restart-sequence"} <= checks
    if not site_mod.load(venue, env).runbook["schedule"].get("continuous"):
        assert {"session-window", "sequence-reset"} <= checks
    # The client recorded the session's metrics as the gateway would.
    logged_on = [s for s in result.samples if s[1] == "vcpl_session_logged_on"]
    assert any(v == 1 for *_, v in logged_on) and any(v == 0 for *_, v in logged_on)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_overlay_is_named(results: dict[str, sandbox.Result], case: str) -> None:
    venue, env, _, field = BROKEN[case]
    result = _result(results, case)
    bad = [f for f in result.findings if not f.ok]
    assert any(f.venue == venue and f.env == env and f.field == field for f in bad), \
        f"no failing Finding names {field}:\n" + "\n".join(str(f) for f in result.findings)


def test_emptydir_restart_counts_the_logon_reject(results: dict[str, sandbox.Result]) -> None:
    samples = _result(results, "emptydir-store").samples
    assert any(name == "vcpl_session_logon_rejects_total" and value >= 1 for _, name, _, value in samples)


@pytest.mark.no_sandbox
def test_sidecar_forwards_a_logon_sent_after_the_session_tickets(tmp_path: Path) -> None:
    """A TLS 1.3 venue sends session tickets right after the handshake. When the gateway's Logon
    reaches the stunnel stand-in only after them (the engine was busy resetting its store at the
    weekly open), the stand-in must still forward it: a relay that blocked reading the tickets
    lost the Logon and the engine logged on two attempts later with MsgSeqNum 3."""
    # Imported here: both modules import quickfix, which the gate above may have found missing.
    from vcpl.sessions.fix_client import Sidecar
    from vcpl.sessions.fix_sim import self_signed

    tls = self_signed(tmp_path, ["127.0.0.1"])
    venue = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = venue.accept()
        with tls.wrap_socket(conn, server_side=True) as session:
            session.settimeout(5)
            try:
                received.append(session.recv(100))
                session.sendall(b"8=FIX.4.4\x0135=A\x01")
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        local = spare.getsockname()[1]
    Sidecar({"name": "fix-os-primary", "accept": f"127.0.0.1:{local}", "connect": f"127.0.0.1:{venue.getsockname()[1]}",
             "sslVersionMin": "TLSv1.3"})
    with socket.create_connection(("127.0.0.1", local), timeout=5) as gateway:
        time.sleep(0.5)   # the handshake and the tickets reach the stand-in first
        gateway.sendall(b"8=FIX.4.4\x0135=A\x0134=1\x01")
        answer = gateway.recv(100)
    venue.close()
    assert received == [b"8=FIX.4.4\x0135=A\x0134=1\x01"], "the stand-in did not forward the Logon to the venue"
    assert answer.startswith(b"8=FIX.4.4"), answer
