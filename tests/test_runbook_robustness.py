"""Bad run books never crash or hang `vcpl validate`: each is refused quickly, through the real
CLI, with one line per problem naming the file and the field (or line and column) and what is
expected. Large, binary and hostile inputs are generated here rather than checked in."""
from __future__ import annotations

import copy
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT
from vcpl import paths, runbook, yamlio

# A hang or a slow path fails the test through the timeout; durations are not asserted otherwise.
BAD_INPUT_SECONDS = 2
ENV = {"PYTHONPATH": str(ROOT / "scripts"), "PATH": "/usr/bin:/bin"}


def _validate(*files: Path, timeout: float = BAD_INPUT_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcpl", "validate", *map(str, files)],
        capture_output=True, text=True, env=ENV, timeout=timeout,
    )


def _assert_refused(result: subprocess.CompletedProcess[str], path: Path, *wanted: str) -> str:
    """Exactly one error line, naming the file, the field or position, and the expectation."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"{path}: "), line
    assert "expected" in line, line
    for text in wanted:
        assert text in line, line
    return line


def _shipped(venue: str) -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(paths.runbook_path(venue).read_text(encoding="utf-8")))


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a field addressed like services.0.environments.prod.endpoints.primary.host."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node: Any = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def _draft(tmp_path: Path, data: dict[str, Any]) -> Path:
    # yamlio.dump writes a string with a newline as a block scalar, as a person would.
    target = tmp_path / "draft.yaml"
    target.write_text(yamlio.dump(data), encoding="utf-8")
    return target


# --- files that are not YAML text ----------------------------------------------------------------


def test_binary_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "runbook.yaml"
    target.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + random.Random(8).randbytes(4096))
    _assert_refused(_validate(target), target, "line 3, column 1", "NUL byte", "UTF-8")


def test_utf16_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "runbook.yaml"
    target.write_bytes(paths.runbook_path("cme").read_text(encoding="utf-8").encode("utf-16"))
    _assert_refused(_validate(target), target, "line 1, column 1", "UTF-16", "expected UTF-8")


def test_five_megabyte_file_is_refused_by_size(tmp_path: Path) -> None:
    target = tmp_path / "runbook.yaml"
    text = paths.runbook_path("cme").read_text(encoding="utf-8")
    target.write_text(text + "# padding\n" * (5 * 1024 * 1024 // 10), encoding="utf-8")
    _assert_refused(_validate(target), target, "(file size)", f"at most {runbook.LIMITS.max_bytes} bytes")


# --- addresses -------------------------------------------------------------------------------------

ADDRESS_CASES = [
    # (id, venue, field to set, value, field path the error names)
    ("cidr-octet", "kraken", "services.0.environments.prod.endpoints.primary.cidrs.0", "300.1.1.1/24",
     "services[0](ws-v2).environments.prod.endpoints.primary.cidrs[0]: '300.1.1.1/24'"),
    ("host-ipv4-octet", "cme", "services.0.environments.prod.endpoints.primary.host", "10.0.0.256",
     "services[0](ilink3).environments.prod.endpoints.primary.host: '10.0.0.256'"),
    ("vpn-peer-octet", "cme", "environments.cert.networks.0.vpn.peer", "198.18.61.256",
     "environments.cert.networks[0].vpn.peer: '198.18.61.256'"),
    ("vpn-remote-cidr-octet", "cme", "environments.cert.networks.0.vpn.remoteCIDRs.1", "10.61.300.0/24",
     "environments.cert.networks[0].vpn.remoteCIDRs[1]: '10.61.300.0/24'"),
    ("egress-source-ip-octet", "cme", "environments.prod.networks.0.allowlistedSourceIP", "10.250.0.999",
     "environments.prod.networks[0].allowlistedSourceIP: '10.250.0.999'"),
    ("multicast-group-octet", "cme", "services.1.environments.cert.channels.0.lines.a.group", "224.0.28.256",
     "services[1](mdp3).environments.cert.channels[0](certification channel 348).lines.a.group: '224.0.28.256'"),
    ("multicast-source-octet", "cme", "services.1.environments.cert.channels.0.lines.b.sources", ["10.61.40.1", "10.61.40.256"],
     "services[1](mdp3).environments.cert.channels[0](certification channel 348).lines.b.sources[1]: '10.61.40.256'"),
    ("multicast-group-not-multicast", "cme", "services.1.environments.cert.channels.0.lines.a.group", "10.61.28.71",
     "lines.a.group: '10.61.28.71' is not valid; expected an IPv4 multicast group in 224.0.0.0/4"),
    ("cidr-trailing-newline", "kraken", "services.0.environments.prod.endpoints.primary.cidrs.0", "104.16.0.0/13\n",
     "services[0](ws-v2).environments.prod.endpoints.primary.cidrs[0]: '104.16.0.0/13\\n'"),
    ("cidr-trailing-space", "kraken", "services.0.environments.prod.endpoints.primary.cidrs.1", "172.64.0.0/13 ",
     "services[0](ws-v2).environments.prod.endpoints.primary.cidrs[1]: '172.64.0.0/13 '"),
    ("host-trailing-newline", "kraken", "services.0.environments.prod.endpoints.primary.host", "ws.kraken.com\n",
     "services[0](ws-v2).environments.prod.endpoints.primary.host: 'ws.kraken.com\\n'"),
    ("vpn-peer-trailing-newline", "cme", "environments.cert.networks.0.vpn.peer", "198.18.61.1\n",
     "environments.cert.networks[0].vpn.peer: '198.18.61.1\\n'"),
]


@pytest.mark.parametrize(("venue", "field", "value", "message"), [c[1:] for c in ADDRESS_CASES], ids=[c[0] for c in ADDRESS_CASES])
def test_bad_address_is_refused(venue: str, field: str, value: Any, message: str, tmp_path: Path) -> None:
    data = _shipped(venue)
    _set(data, field, value)
    target = _draft(tmp_path, data)
    if isinstance(value, str) and value.endswith("\n"):
        assert "|" in target.read_text(encoding="utf-8")  # really a block scalar
    _assert_refused(_validate(target), target, message)


def test_cidr_with_host_bits_is_accepted(tmp_path: Path) -> None:
    """Decision: accepted, as before; the egress allow-list and its gate use the string as written."""
    data = _shipped("kraken")
    _set(data, "services.0.environments.prod.endpoints.primary.cidrs.0", "104.16.0.1/13")
    runbook.semantic_problems(data)  # no crash on a non-canonical network
    result = _validate(_draft(tmp_path, data))
    assert result.returncode == 0, result.stderr


# --- YAML structure ----------------------------------------------------------------------------------


def test_duplicate_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = paths.runbook_path("cme").read_text(encoding="utf-8")
    first = "          primary: {host: 10.60.20.11,"
    second = "          backup: {host: 10.60.20.12,"
    assert text.count(first) == 1 and text.count(second) == 1
    lines = text.splitlines()
    first_line = next(i for i, line in enumerate(lines, 1) if line.startswith(first))
    second_line = next(i for i, line in enumerate(lines, 1) if line.startswith(second))
    target = tmp_path / "draft.yaml"
    target.write_text(text.replace(second, "          primary: {host: 10.60.20.12,"), encoding="utf-8")
    _assert_refused(
        _validate(target), target,
        "services[0](ilink3).environments.prod.endpoints.primary: key 'primary'",
        f"lines {first_line} and {second_line}",
    )


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    levels = "abcdefghi"
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for previous, name in zip(levels, levels[1:]):
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    target = tmp_path / "runbook.yaml"
    target.write_text(text, encoding="utf-8")
    _assert_refused(_validate(target), target, "b[0] (line 2, column 8)", "YAML alias '*a'")


@pytest.mark.parametrize(("shape", "text", "field"), [
    ("flow-lists", "[" * 5000 + "]" * 5000, "[0][0][0]"),
    ("block-lists", "- " * 5000 + "x\n", "[0][0][0]"),
    ("flow-mappings", "{a: " * 5000 + "1" + "}" * 5000, "a.a.a"),
])
def test_deep_nesting_is_refused(shape: str, text: str, field: str, tmp_path: Path) -> None:
    target = tmp_path / "runbook.yaml"
    target.write_text(text + "\n", encoding="utf-8")
    _assert_refused(_validate(target), target, field, "(line 1, column", f"more than {runbook.LIMITS.max_depth} levels")


# --- credentials -------------------------------------------------------------------------------------

CREDENTIAL_KEYS = [
    "password", "passwd", "secret", "secretKey", "token", "apiKey", "api_key", "privateKey",
    "passphrase", "credential", "credentials", "fixPassword", "bearer_token", "PASSWORD",
]


@pytest.mark.parametrize("key", CREDENTIAL_KEYS)
def test_credential_key_in_session_is_refused(key: str, tmp_path: Path) -> None:
    """Session blocks are copied into gateway.json, so this is where a secret would leak."""
    data = _shipped("coinbase")
    data["services"][0]["environments"]["prod"]["session"][key] = "hunter2"
    target = _draft(tmp_path, data)
    _assert_refused(
        _validate(target), target,
        f"services[0](fix-oe).environments.prod.session.{key}: '{key}' looks like a credential",
        "secret store", "auth.secretKeys",
    )


@pytest.mark.parametrize(("field", "shown"), [
    ("password", "password"),
    ("services.0.auth.apiKey", "services[0](fix-oe).auth.apiKey"),
    ("services.0.environments.prod.endpoints.primary.token", "services[0](fix-oe).environments.prod.endpoints.primary.token"),
    ("sources.CB-FIX.secret", "sources.CB-FIX.secret"),
    ("sources.API-TOKEN", "sources.API-TOKEN"),
])
def test_credential_key_anywhere_is_refused(field: str, shown: str, tmp_path: Path) -> None:
    data = _shipped("coinbase")
    _set(data, field, "hunter2")
    target = _draft(tmp_path, data)
    _assert_refused(_validate(target), target, f"{shown}: ", "looks like a credential", "secret store")


def test_schema_alone_refuses_credential_keys() -> None:
    """The pykwalify schema refuses them too, for anyone who applies it without runbook.py."""
    data = _shipped("coinbase")
    data["services"][0]["environments"]["prod"]["session"]["fixPassword"] = "hunter2"
    data["sources"]["API-TOKEN"] = {"quality": "P", "ref": "x"}
    problems = runbook.schema_problems(data)
    assert any("session" in p and "fixPassword" in p for p in problems), problems
    assert any("API-TOKEN" in p for p in problems), problems


# --- drafts and the shipped run books ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["draft.yaml", "drafts/runbook.yaml"])
def test_valid_draft_outside_venues_passes(name: str, tmp_path: Path) -> None:
    """The venue id of a draft comes from its own venue.id, not from the folder it sits in."""
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(paths.runbook_path("nasdaq").read_text(encoding="utf-8"), encoding="utf-8")
    result = _validate(target)
    assert result.returncode == 0, result.stderr
    assert f"ok   {target}" in result.stdout


def test_draft_with_bad_venue_id_is_refused(tmp_path: Path) -> None:
    data = _shipped("nasdaq")
    data["venue"]["id"] = "Nasdaq US"
    target = _draft(tmp_path, data)
    _assert_refused(_validate(target), target, "venue.id: ")


def test_venue_id_must_match_its_folder_in_the_venue_layout(tmp_path: Path) -> None:
    """In venues/<id>/ (of any checkout) the folder name is the id overlays and generated files use."""
    data = _shipped("cme")
    data["venue"]["id"] = "cme-globex"
    target = tmp_path / "venues" / "cme" / "runbook.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(yamlio.dump(data), encoding="utf-8")
    _assert_refused(_validate(target), target, "venue.id: is 'cme-globex'; expected the folder name 'cme'")


def test_every_shipped_runbook_validates() -> None:
    result = _validate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.count("ok   ") == len(paths.venue_ids())
