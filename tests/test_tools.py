"""The tools the tests run are the pinned ones from `make setup`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from vcpl import paths, tools


@pytest.mark.parametrize("tool", tools.TOOLS, ids=lambda t: t.name)
def test_pinned_tool_is_installed(tool: tools.GoTool) -> None:
    binary = paths.TOOLS_BIN / tool.name
    assert binary.exists(), f"{binary} missing: run `make setup`"
    args = {"kustomize": ["version"], "conftest": ["--version"], "kyverno": ["version"], "promtool": ["--version"]}[tool.name]
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True).stdout
    assert tool.reported_version in out, f"{tool.name} reports {out!r}, expected {tool.reported_version}"


def test_vcpl_is_an_installed_command(tmp_path) -> None:
    """`make setup` installs the package: the command runs from anywhere, without PYTHONPATH."""
    command = Path(sys.executable).parent / "vcpl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(command), "validate", str(ROOT / "venues" / "kraken" / "runbook.yaml")],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
