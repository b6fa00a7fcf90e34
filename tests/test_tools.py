"""The tools the tests run are the pinned ones from `make setup`."""
from __future__ import annotations

import subprocess

import pytest

from vcpl import paths, tools


@pytest.mark.parametrize("tool", tools.TOOLS, ids=lambda t: t.name)
def test_pinned_tool_is_installed(tool: tools.GoTool) -> None:
    binary = paths.TOOLS_BIN / tool.name
    assert binary.exists(), f"{binary} missing: run `make setup`"
    args = {"kustomize": ["version"], "conftest": ["--version"], "kyverno": ["version"], "promtool": ["--version"]}[tool.name]
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True).stdout
    assert tool.reported_version in out, f"{tool.name} reports {out!r}, expected {tool.reported_version}"
