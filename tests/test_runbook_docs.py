"""docs/runbooks/<venue>.md: in sync with the run books and renders, an anchor for every alert."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from conftest import Docs, overlay_ids
from vcpl import paths, runbook_docs

Rendered = dict[tuple[str, str], Docs]


@pytest.fixture(scope="module")
def planned_docs(rendered_overlays: Rendered) -> dict:
    return runbook_docs.planned(rendered_overlays)


def _alert_rules(docs: Docs) -> list[dict]:
    return [
        rule
        for doc in docs if doc["kind"] == "PrometheusRule"
        for group in doc["spec"]["groups"]
        for rule in group["rules"] if "alert" in rule
    ]


def test_committed_docs_match_the_run_books(planned_docs: dict) -> None:
    problems = runbook_docs.stale(planned_docs)
    assert not problems, "run `make runbook-docs` (after `make generate`):\n" + "\n".join(problems)


def test_every_venue_has_a_doc_and_nothing_else(planned_docs: dict) -> None:
    assert set(planned_docs) == {runbook_docs.DOCS / f"{v}.md" for v in paths.venue_ids()}
    assert all(text.endswith("\n") and not text.endswith("\n\n") for text in planned_docs.values())


def test_generated_twice_is_identical(rendered_overlays: Rendered, planned_docs: dict) -> None:
    assert runbook_docs.planned(rendered_overlays) == planned_docs


@pytest.mark.parametrize("env,venue", overlay_ids())
def test_every_rendered_alert_has_its_anchor(rendered_overlays: Rendered, env: str, venue: str) -> None:
    text = runbook_docs.doc_path(venue).read_text(encoding="utf-8")
    rules = _alert_rules(rendered_overlays[(env, venue)])
    assert rules, f"{env}/{venue} renders no alert rules"
    for rule in rules:
        anchor = rule["alert"].lower()
        assert f'<a id="{anchor}"></a>' in text, f"{venue}.md has no anchor for {rule['alert']}"
        link = rule["annotations"].get("runbook")
        if link:  # the link a notification carries must land on that anchor
            assert link == f"docs/runbooks/{venue}.md#{anchor}"


def test_weekly_open_is_shown_in_utc_for_winter_and_summer(runbooks: dict) -> None:
    # Independent of runbook_docs: zoneinfo on two Sundays of a winter and a summer month.
    weekly = runbooks["cme"]["schedule"]["weekly"]["open"]
    zone = runbooks["cme"]["schedule"]["timeZone"]
    assert weekly["day"] == "sunday", "the test picks Sundays; adjust it if CME's open day changes"
    hours, minutes = (int(p) for p in weekly["time"].split(":"))
    winter = dt.datetime(2026, 2, 1, hours, minutes, tzinfo=ZoneInfo(zone)).astimezone(dt.timezone.utc)
    summer = dt.datetime(2026, 8, 2, hours, minutes, tzinfo=ZoneInfo(zone)).astimezone(dt.timezone.utc)
    assert winter.hour != summer.hour, "America/Chicago observes DST"
    text = runbook_docs.doc_path("cme").read_text(encoding="utf-8")
    schedule_section = text.split("## Schedule", 1)[1].split("\n## ", 1)[0]
    expected = f"Sunday {weekly['time']} {zone} = {winter:%A %H:%M} UTC (winter) / {summer:%H:%M} UTC (summer)"
    assert expected in schedule_section


def test_unverified_sources_are_listed(runbooks: dict) -> None:
    for venue, rb in runbooks.items():
        text = runbook_docs.doc_path(venue).read_text(encoding="utf-8")
        section = text.split("## Unverified facts", 1)[1]
        for ack in rb.get("acknowledgements", []):
            assert f"`{ack['source']}`" in section and ack["reason"] in section


def test_stale_detection_reports_a_changed_and_a_missing_doc(planned_docs: dict) -> None:
    files = dict(planned_docs)
    changed = runbook_docs.doc_path("cme")
    files[changed] = files[changed].replace("## Failover", "## Failover (edited)")
    missing = runbook_docs.DOCS / "no-such-venue.md"
    files[missing] = "# nothing\n"
    problems = runbook_docs.stale(files)
    assert f"{paths.relative(changed)}: out of date" in problems
    assert f"{paths.relative(missing)}: missing" in problems
