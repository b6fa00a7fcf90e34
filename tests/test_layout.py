"""Repository conventions: one object per file named <kind>.<name>.yaml, .yaml only, kustomization.yaml."""
from __future__ import annotations

import re
import subprocess

import yaml

from conftest import ROOT

OBJECT_DIRS = ("base", "components")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if (ROOT / line).exists()]


def test_file_names_are_portable() -> None:
    """Letters, digits and ._/+- only: a stray file written by a tool through a dangling path (as
    a QuickFIX engine once did into the repository root) is caught before it is committed."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True)
    names = [n for n in out.stdout.split(b"\0") if n]
    assert not [n for n in names if not re.fullmatch(rb"[A-Za-z0-9._/+-]+", n)]


def test_no_yml_files() -> None:
    assert not [f for f in _tracked() if f.endswith(".yml")]


def test_objects_are_one_per_file_and_named_after_kind_and_name() -> None:
    wrong = []
    for name in _tracked():
        if not name.startswith(OBJECT_DIRS) or not name.endswith(".yaml") or name.endswith("kustomization.yaml"):
            continue
        docs = [d for d in yaml.safe_load_all((ROOT / name).read_text()) if d]
        if len(docs) != 1:
            wrong.append(f"{name}: {len(docs)} objects")
            continue
        doc = docs[0]
        expected = f"{doc['kind'].lower()}.{doc['metadata']['name']}.yaml"
        if name.rsplit("/", 1)[-1] != expected:
            wrong.append(f"{name}: expected file name {expected}")
    assert not wrong, "\n".join(wrong)
