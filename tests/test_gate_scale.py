"""The gate at scale: the cache re-judges exactly what changed (an overlay, a policy, a tool, a run
book seen only by the cross-overlay rules), shards merge into the same verdict as one run, and a
check scoped to one venue still sees the rest of the catalogue. Runs `vcpl check` in a scratch copy
holding two venues, so nothing here touches the real cache or files."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

KEPT = ("coinbase", "nyse")
IGNORED = shutil.ignore_patterns(".git", ".venv", ".tools", ".cache", "build", "__pycache__", ".pytest_cache", "evidence", "docs", "tests")
JUDGED = re.compile(r"judged afresh: (?P<rego>\d+) of (?P<total>\d+) overlays by conftest, (?P<kyverno>\d+) by kyverno")


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=IGNORED)
    for folder in (repo / "venues").iterdir():
        if folder.is_dir() and folder.name not in KEPT:
            shutil.rmtree(folder)
    for env_dir in (repo / "overlays").iterdir():
        for folder in env_dir.iterdir():
            if folder.name not in KEPT:
                shutil.rmtree(folder)
    # The pinned tools, with stamps of the scratch copy's own so a test can change a tool's version.
    bin_dir = repo / ".tools" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("kustomize", "conftest", "kyverno"):
        (bin_dir / tool).symlink_to(ROOT / ".tools" / "bin" / tool)
        shutil.copy(ROOT / ".tools" / "bin" / f".{tool}.version", bin_dir / f".{tool}.version")
    return repo


def _vcpl(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo / "scripts")}
    return subprocess.run([sys.executable, "-m", "vcpl", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def _check(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    result = _vcpl(repo, "check", *args)
    match = JUDGED.search(result.stdout)
    assert match, result.stdout[-2000:] + result.stderr[-2000:]
    return result, {k: int(v) for k, v in match.groupdict().items()}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_cache_rejudges_exactly_what_changed(scratch: Path) -> None:
    first, counts = _check(scratch)
    assert first.returncode == 0, first.stdout[-3000:]
    assert counts == {"rego": 6, "total": 6, "kyverno": 6}

    _, counts = _check(scratch)
    assert counts == {"rego": 0, "total": 6, "kyverno": 0}, "an unchanged catalogue is judged again"

    _edit(scratch / "overlays" / "dev" / "nyse" / "kustomization.yaml", "newTag:", "newTag: 9.9.9\n    # was:")
    _, counts = _check(scratch)
    assert counts == {"rego": 1, "total": 6, "kyverno": 1}, "an overlay change must re-judge that overlay only"

    with (scratch / "policies" / "rego" / "network" / "network.rego").open("a") as handle:
        handle.write("\n# a policy edit\n")
    _, counts = _check(scratch)
    assert counts == {"rego": 6, "total": 6, "kyverno": 0}, "a Rego change must re-judge every overlay with conftest"

    with (scratch / "policies" / "kyverno" / "require-image-digest" / "require-image-digest.yaml").open("a") as handle:
        handle.write("\n# a policy edit\n")
    _, counts = _check(scratch)
    assert counts == {"rego": 0, "total": 6, "kyverno": 6}, "a Kyverno change must re-judge every overlay with kyverno"

    (scratch / ".tools" / "bin" / ".conftest.version").write_text("github.com/open-policy-agent/conftest@v0.0.1-other\n")
    _, counts = _check(scratch)
    assert counts == {"rego": 6, "total": 6, "kyverno": 0}, "another conftest must judge every overlay again"


def _clash_compids(repo: Path) -> None:
    """NYSE's prod session takes Coinbase's prod SenderCompID; Coinbase's overlays do not change."""
    _edit(repo / "venues" / "nyse" / "runbook.yaml", "senderCompID: VCPL-NYSE-PRD", "senderCompID: VCPL-CB-PRD")
    generated = _vcpl(repo, "generate", "--venue", "nyse")
    assert generated.returncode == 0, generated.stderr


def _compid_findings(stdout: str) -> set[str]:
    """venue / env blocks that carry a library-compid-unique finding."""
    found, current = set(), None
    for line in stdout.splitlines():
        header = re.match(r"^(\S+) / (\S+)$", line)
        if header:
            current = f"{header.group(1)}/{header.group(2)}"
        elif "library-compid-unique" in line and current:
            found.add(current)
    return found


def test_a_run_book_change_seen_only_across_overlays_reaches_the_cached_ones(scratch: Path) -> None:
    _check(scratch)
    _clash_compids(scratch)
    result, counts = _check(scratch)
    assert counts["rego"] == 3, "NYSE's run book feeds its three overlays; Coinbase's come from the cache"
    assert result.returncode == 1
    assert _compid_findings(result.stdout) == {"nyse/prod", "coinbase/prod"}, result.stdout[-3000:]


def test_shards_merge_into_the_verdict_of_one_run(scratch: Path) -> None:
    _clash_compids(scratch)
    whole, _ = _check(scratch, "--no-cache")
    files = []
    for index in (1, 2):
        target = scratch / "build" / f"shard-{index}.json"
        shard = _vcpl(scratch, "check", "--no-cache", "--shard", f"{index}/2", "--shard-output", str(target))
        assert shard.returncode == 0, shard.stderr
        files.append(str(target))
    merged = _vcpl(scratch, "check", "--merge", *files)
    assert merged.returncode == 1
    assert merged.stdout.strip() == whole.stdout.split("\ntiming:")[0].strip()

    incomplete = _vcpl(scratch, "check", "--merge", *files[:1])
    assert incomplete.returncode == 2 and "expected each of 1..n exactly once" in incomplete.stderr


def test_a_scoped_check_judges_one_venue_against_the_whole_catalogue(scratch: Path) -> None:
    _clash_compids(scratch)
    result, counts = _check(scratch, "--venue", "coinbase", "--no-cache")
    assert counts["rego"] == 3 and counts["total"] == 6
    # Coinbase's overlays are unchanged, yet the clash NYSE introduced is reported on them.
    assert _compid_findings(result.stdout) == {"coinbase/prod"}
    assert "nyse / " not in result.stdout


def test_generate_for_one_venue_ignores_another_unfinished_one(scratch: Path) -> None:
    runbook = scratch / "venues" / "nyse" / "runbook.yaml"
    data = yaml.safe_load(runbook.read_text())
    data["venue"]["name"] = "FILL-IN text: the venue's name"
    runbook.write_text(yaml.safe_dump(data, sort_keys=False))
    assert _vcpl(scratch, "generate").returncode != 0, "an unfinished run book blocks the full generate"
    scoped = _vcpl(scratch, "generate", "--venue", "coinbase")
    assert scoped.returncode == 0, scoped.stderr
