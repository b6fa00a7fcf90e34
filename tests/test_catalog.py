"""docs/catalog.md is current, and its common-versus-unique section is computed, not written."""
from __future__ import annotations

from vcpl import catalog, paths, runbook


def test_catalog_is_in_sync() -> None:
    assert catalog.CATALOG.read_text() == catalog.render_catalog(), "run `make generate`"


def test_catalog_lists_every_venue_and_shared_traits_hold_for_all() -> None:
    text = catalog.render_catalog()
    books = {v: runbook.load_venue(v) for v in paths.venue_ids()}
    assert len(books) >= 8
    for venue in books:
        assert f"| {venue} |" in text
    shared = text.split("### Shared by every venue")[1].split("###")[0]
    for line in [l[2:] for l in shared.splitlines() if l.startswith("- ") and l != "- (none)"]:
        assert all(line in catalog.traits(rb) for rb in books.values()), line


def test_a_trait_of_one_venue_is_reported_unique() -> None:
    books = {v: runbook.load_venue(v) for v in paths.venue_ids()}
    mine = catalog.traits(books["cme"]) - set().union(*(catalog.traits(rb) for v, rb in books.items() if v != "cme"))
    unique = catalog.render_catalog().split("### One venue only")[1].split("###")[0]
    for trait in mine:
        assert f"- {trait} — cme" in unique
