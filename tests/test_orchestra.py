"""FIX Orchestra Interfaces export/import, checked against the official XSD fetched from Maven Central.

The schema is fetched at test time; when it cannot be obtained the tests fail rather than skip,
so a green run always means the documents were validated by the real schema.
"""
from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vcpl import orchestra, paths, runbook
from vcpl.errors import VcplError

VENUE_DIRS = paths.venue_dirs()
ENV_VENUES = [(d, env) for d in VENUE_DIRS for env in paths.ENVIRONMENTS]


@pytest.fixture(scope="session", autouse=True)
def official_schema() -> Path:
    try:
        return orchestra.fetch_schema()
    except VcplError as exc:
        pytest.fail(f"the official FIX Orchestra schema could not be obtained: {exc}")


def _rb(directory: Path) -> runbook.Runbook:
    return runbook.load(directory / "runbook.yaml")


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("fetch_schema ran mvn although the schema is already extracted")


def test_schema_is_the_pinned_official_one(official_schema: Path) -> None:
    assert official_schema.name == "interfaces.xsd"
    assert all((official_schema.parent / name).exists() for name in orchestra.XSD_FILES)
    text = official_schema.read_text(encoding="utf-8")
    assert f'targetNamespace="{orchestra.FIXI}"' in text
    assert orchestra.ARTIFACT == "io.fixprotocol.orchestra:interfaces:1.7.3:jar"


def test_second_fetch_is_instant(monkeypatch: pytest.MonkeyPatch, official_schema: Path) -> None:
    monkeypatch.setattr(orchestra.subprocess, "run", _no_network)
    assert orchestra.fetch_schema() == official_schema


def test_missing_mvn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orchestra, "_schema_present", lambda: False)
    monkeypatch.setattr(orchestra.shutil, "which", lambda name: None)
    with pytest.raises(VcplError, match="mvn not found"):
        orchestra.fetch_schema()


@pytest.mark.parametrize("directory", VENUE_DIRS, ids=lambda d: d.name)
def test_export_validates_against_official_xsd(directory: Path) -> None:
    xml = orchestra.export(_rb(directory))
    assert orchestra.validate(xml) == []


@pytest.mark.parametrize("directory", VENUE_DIRS, ids=lambda d: d.name)
def test_export_is_deterministic_and_has_an_interface_per_service(directory: Path) -> None:
    rb = _rb(directory)
    xml = orchestra.export(rb)
    assert orchestra.export(rb) == xml
    names = [i.get("name") for i in ET.fromstring(xml).findall(f"{{{orchestra.FIXI}}}interface")]
    assert names == [f"{rb['venue']['id']}/{s['name']}" for s in rb["services"]]


def _broken(xml: str, old: str, new: str) -> str:
    assert old in xml, f"the mutation needs '{old}' in the document"
    return xml.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("<fixi:sessionProtocol ", "<fixi:sessionLayer ", "sessionLayer"),  # element the XSD does not define
        ("<fixi:role>initiator</fixi:role>", "<fixi:role>subscriber</fixi:role>", "fixi:role"),  # not in role_t
        ('messageCast="unicast"', 'messageCast="anycast"', "anycast"),  # not in messageCast_t
        ("<fixi:metadata>", "<fixi:meta>", "meta"),  # required metadata missing
    ],
    ids=["unknown-element", "bad-role", "bad-message-cast", "missing-metadata"],
)
def test_broken_documents_are_rejected(old: str, new: str, expected: str) -> None:
    xml = orchestra.export(runbook.load_venue("cme"))
    xml = _broken(xml, old, new)
    if new == "<fixi:meta>":
        xml = xml.replace("</fixi:metadata>", "</fixi:meta>", 1)
    problems = orchestra.validate(xml)
    assert problems, "the official XSD accepted a broken document"
    assert any(expected in p for p in problems), problems


def test_malformed_xml_is_reported() -> None:
    assert orchestra.validate("<fixi:interfaces")[0].startswith("not well-formed XML")


def test_import_rejects_an_invalid_document() -> None:
    xml = _broken(orchestra.export(runbook.load_venue("cme")), "<fixi:sessionProtocol ", "<fixi:sessionLayer ")
    with pytest.raises(VcplError, match="not a valid FIX Orchestra Interfaces document"):
        orchestra.import_(xml)


@pytest.mark.parametrize(("directory", "env"), ENV_VENUES, ids=lambda v: getattr(v, "name", v))
def test_round_trip_keeps_every_carried_field(directory: Path, env: str) -> None:
    rb = _rb(directory)
    back = orchestra.import_(orchestra.export(rb))
    before, after = orchestra.carried(rb), orchestra.carried(back)
    # Venue-wide fields are checked with every environment; service fields per environment.
    scope = [p for p in before.keys() | after.keys() if ".environments." not in p or f".environments.{env}." in p]
    differences = [f"{p}: {before.get(p)!r} -> {after.get(p)!r}" for p in sorted(scope) if before.get(p) != after.get(p)]
    assert not differences, "\n".join(differences)
    assert any(f".environments.{env}." in p for p in before), f"nothing carried for {env}"


def test_carried_view_covers_the_declared_fields() -> None:
    """Guards the round trip against a view that silently compares nothing."""
    view = orchestra.carried(runbook.load(paths.FIXTURE_VENUES / "kitchen-sink" / "runbook.yaml"))
    for expected in (
        "venue.id",
        "venue.operator",
        "services[0].protocol.beginString",
        "services[0].role",
        "services[0].tls.minVersion",
        "services[0].environments.prod.session.senderCompID",
        "services[0].environments.prod.endpoints.dr.host",
        "services[0].environments.prod.endpoints.dr.transport",
        "services[1].environments.cert.channels[0].id",
        "services[1].environments.cert.channels[0].name",
        "services[1].environments.cert.channels[0].lines.b.group",
        "services[1].environments.cert.recovery[0].kind",
        "services[1].environments.cert.recovery[0].endpoint.port",
    ):
        assert expected in view, expected
    assert not any(p.endswith(".source") or ".heartbeat." in p for p in view)


@pytest.mark.parametrize("directory", VENUE_DIRS, ids=lambda d: d.name)
def test_import_names_what_orchestra_cannot_carry(directory: Path) -> None:
    rb = _rb(directory)
    skeleton = orchestra.import_(orchestra.export(rb))
    gaps = set(orchestra.missing(skeleton))
    for top in ("sources", "schedule", "certification", "contacts", "failover", "clockSync"):
        assert top in gaps
    for field in ("ownerTeam", "archetype", "runbookVersion"):
        assert f"venue.{field}" in gaps
    for env in paths.ENVIRONMENTS:
        assert f"environments.{env}.networks" in gaps
    for index, service in enumerate(rb["services"]):
        for field in ("purpose", "heartbeat", "sequenceReset", "cancelOnDisconnect", "auth", "protocol.source"):
            assert f"services[{index}].{field}" in gaps
        if service["protocol"]["sessionLayer"] == "fixt":
            assert f"services[{index}].protocol.defaultApplVerID" in gaps
        endpoint_sources = [p for p in gaps if p.startswith(f"services[{index}].environments.") and p.endswith(".source")]
        assert endpoint_sources, "every endpoint and line needs its source filled in"
    # The skeleton keeps the run book's shape: same top-level keys, one service per interface.
    assert set(skeleton) <= set(rb) | {"sources", "schedule", "certification", "contacts", "failover", "clockSync"}
    assert [s["name"] for s in skeleton["services"]] == [s["name"] for s in rb["services"]]


def _args(**kwargs: object) -> argparse.Namespace:
    return argparse.Namespace(**kwargs)


def test_cli_export_writes_a_valid_document(tmp_path: Path) -> None:
    out = tmp_path / "cme.xml"
    assert orchestra._cmd_export(_args(venue="cme", output=str(out))) == 0
    assert orchestra.validate(out.read_text(encoding="utf-8")) == []


def test_cli_export_writes_nothing_when_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_export = orchestra.export
    monkeypatch.setattr(orchestra, "export", lambda rb: real_export(rb).replace("<fixi:role>", "<fixi:rol>", 1)
                        .replace("</fixi:role>", "</fixi:rol>", 1))
    out = tmp_path / "cme.xml"
    with pytest.raises(VcplError, match="does not validate"):
        orchestra._cmd_export(_args(venue="cme", output=str(out)))
    assert not out.exists()


def test_cli_import_writes_a_skeleton_with_todos(tmp_path: Path) -> None:
    source = tmp_path / "coinbase.xml"
    source.write_text(orchestra.export(runbook.load_venue("coinbase")), encoding="utf-8")
    out = tmp_path / "runbook.yaml"
    assert orchestra._cmd_import(_args(file=str(source), output=str(out))) == 0
    text = out.read_text(encoding="utf-8")
    assert "# TODO: services[0].heartbeat" in text
    import yaml

    assert yaml.safe_load(text)["services"][0]["environments"]["prod"]["session"]["targetCompID"] == "Coinbase"


def test_parser_wires_both_subcommands() -> None:
    top = argparse.ArgumentParser()
    orchestra.add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["orchestra", "export", "cme", "-o", "x.xml"])
    assert (args.func, args.venue, args.output) == (orchestra._cmd_export, "cme", "x.xml")
    args = top.parse_args(["orchestra", "import", "x.xml"])
    assert (args.func, args.file, args.output) == (orchestra._cmd_import, "x.xml", None)
