"""`vcpl rehearse-sessions` keeps and prints the log of exactly the overlays that failed: in CI the
output is all that is left of a sandbox."""
from __future__ import annotations

from pathlib import Path

import pytest

from vcpl.sessions import cli, sandbox
from vcpl.sessions.site import Finding


def _result(venue: str, ok: bool) -> sandbox.Result:
    finding = Finding(venue, "prod", "fix-os", "sequence-reset", "session.cfg StartTime", ok, "detail")
    return sandbox.Result(venue, "prod", [finding], [], f"engine log of {venue}\n")


@pytest.mark.no_sandbox
def test_only_failed_overlays_logs_are_kept(tmp_path: Path) -> None:
    (tmp_path / "old-prod.log").write_text("from an earlier run\n")
    kept = cli.keep_logs([_result("ice", False), _result("nyse", True)], tmp_path)
    assert kept == [tmp_path / "ice-prod.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ice-prod.log"]
    assert kept[0].read_text() == "engine log of ice\n"
