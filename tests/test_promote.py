"""Promotion refuses a failing target, leaves it untouched, and records evidence for a passing one.
Runs `vcpl promote` in a scratch copy of the repository, so the real overlays are never touched."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

IGNORED = shutil.ignore_patterns(".git", ".venv", ".tools", "build", "__pycache__", ".pytest_cache")


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    return copy


def _promote(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo / "scripts"), "PATH": f"{ROOT / '.tools' / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "vcpl", "promote", *args], cwd=repo, env=env, capture_output=True, text=True)


def _set_image(path: Path, **fields: str) -> None:
    data = yaml.safe_load(path.read_text())
    image = data["images"][0]
    image.pop("digest", None)
    image.update(fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_promotion_carries_the_image_and_records_evidence(scratch: Path) -> None:
    cert = scratch / "overlays" / "cert" / "kraken" / "kustomization.yaml"
    prod = scratch / "overlays" / "prod" / "kraken" / "kustomization.yaml"
    new_digest = "sha256:" + "c" * 64
    _set_image(cert, newTag="0.9.5", digest=new_digest)
    prod_before = yaml.safe_load(prod.read_text())

    result = _promote(scratch, "kraken", "cert", "prod")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "+    newTag: 0.9.5" in result.stdout or "newTag: 0.9.5" in result.stdout
    after = yaml.safe_load(prod.read_text())
    assert after["images"][0]["digest"] == new_digest and after["images"][0]["newTag"] == "0.9.5"
    # Only the image and the promotion stamp move; the rest of prod stays prod's.
    assert after["namespace"] == prod_before["namespace"] and after["components"] == prod_before["components"]
    assert after["images"][0]["newName"] == prod_before["images"][0]["newName"]
    evidence = list((scratch / "evidence" / "kraken").glob("*-cert-to-prod.json"))
    assert len(evidence) == 1
    record = json.loads(evidence[0].read_text())
    assert record["result"] == "passed" and record["promoted"]["images"]["after"]["venue-gateway"]["digest"] == new_digest
    assert record["promoted"]["runbookVersion"] == yaml.safe_load((scratch / "venues" / "kraken" / "runbook.yaml").read_text())["venue"]["runbookVersion"]
    assert record["renderedSha256"]["after"] != record["renderedSha256"]["before"]
    assert set(record["tools"]) >= {"kustomize", "kyverno", "conftest", "python"}
    assert record["checks"]["kyverno"] and record["checks"]["rego"]


def test_promotion_refuses_a_failing_target_and_writes_nothing(scratch: Path) -> None:
    cert = scratch / "overlays" / "cert" / "kraken" / "kustomization.yaml"
    prod = scratch / "overlays" / "prod" / "kraken" / "kustomization.yaml"
    _set_image(cert, newTag="0.9.5")  # a tag without a digest must not reach prod
    before = prod.read_text()

    result = _promote(scratch, "kraken", "cert", "prod")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REFUSED" in result.stdout and "prod-images-by-digest" in result.stdout
    assert prod.read_text() == before
    assert not (scratch / "evidence").exists()


def test_promotion_refuses_stale_generated_files(scratch: Path) -> None:
    runbook_file = scratch / "venues" / "kraken" / "runbook.yaml"
    text = runbook_file.read_text()
    bumped = re.sub(r"runbookVersion: \S+", "runbookVersion: 9.9.9", text)
    assert bumped != text
    runbook_file.write_text(bumped)
    result = _promote(scratch, "kraken", "cert", "prod")
    assert result.returncode == 2 and "make generate" in result.stderr, result.stdout + result.stderr


def test_promotion_only_moves_one_step(scratch: Path) -> None:
    result = _promote(scratch, "kraken", "dev", "prod")
    assert result.returncode != 0 and "expected dev -> cert or cert -> prod" in result.stderr + result.stdout
