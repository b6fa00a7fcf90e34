"""Install the pinned CLI tools into .tools/bin from the Go module proxy.

kustomize and conftest install with `go install module@version`. The kyverno CLI's and promtool's
go.mod files have `replace` directives that `go install` refuses, so they are built inside their own downloaded modules,
whose go.mod and go.sum then pin exactly upstream's dependency graph. Go's module and build
caches live outside the clone, so a fresh clone on the same machine rebuilds in seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vcpl import paths, render
from vcpl.errors import VcplError


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str
    version: str
    package: str = ""  # set when the binary is built inside the downloaded module
    ldflags: str = ""
    reports: str = ""  # the version the binary prints, when it differs from the module version

    @property
    def reported_version(self) -> str:
        return self.reports or self.version.lstrip("v")


TOOLS = (
    GoTool("kustomize", "sigs.k8s.io/kustomize/kustomize/v5", "v5.8.1"),
    GoTool(
        "conftest",
        "github.com/open-policy-agent/conftest",
        "v0.69.0",
        ldflags="-s -w -X github.com/open-policy-agent/conftest/internal/version.Version=0.69.0",
    ),
    GoTool(
        "kyverno",
        "github.com/kyverno/kyverno",
        "v1.19.0",
        package="./cmd/cli/kubectl-kyverno",
        ldflags="-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=v1.19.0",
    ),
    # Prometheus 3.14.0 is published as module version v0.314.0; its go.mod also has replace and
    # exclude directives, and its zip carries a go.work of nested modules (hence GOWORK=off).
    GoTool(
        "promtool",
        "github.com/prometheus/prometheus",
        "v0.314.0",
        package="./cmd/promtool",
        ldflags="-s -w -X github.com/prometheus/common/version.Version=3.14.0",
        reports="3.14.0",
    ),
)


def stamp(tool: GoTool) -> str:
    return f"{tool.module}@{tool.version} {tool.ldflags}".strip()


def installed_stamp(name: str) -> str:
    """What identifies the binary a command will run: the version stamp beside it, or its size and
    modification time when it was installed by other means."""
    binary = Path(render.tool(name))
    recorded = binary.parent / f".{name}.version"
    if recorded.exists():
        return recorded.read_text(encoding="utf-8").strip()
    info = binary.stat()
    return f"{binary} {info.st_size} {info.st_mtime_ns}"


def _stamp_path(tool: GoTool) -> Path:
    return paths.TOOLS_BIN / f".{tool.name}.version"


def is_current(tool: GoTool) -> bool:
    recorded = _stamp_path(tool)
    return (paths.TOOLS_BIN / tool.name).exists() and recorded.exists() and recorded.read_text().strip() == stamp(tool)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries; GOWORK/GOFLAGS from a developer's shell must not change the build.
    env.update({"CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "", "GOBIN": str(paths.TOOLS_BIN)})
    return env


def _run(cmd: list[str], cwd: str | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=_go_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise VcplError(f"`{' '.join(cmd)}` failed:\n{result.stderr.strip()[-4000:]}")
    return result.stdout


def install(tool: GoTool) -> None:
    target = paths.TOOLS_BIN / tool.name
    if tool.package:
        info = json.loads(_run(["go", "mod", "download", "-json", f"{tool.module}@{tool.version}"]))
        cmd = ["go", "build", "-trimpath", "-o", str(target)]
        if tool.ldflags:
            cmd += ["-ldflags", tool.ldflags]
        _run(cmd + [tool.package], cwd=info["Dir"])
    else:
        cmd = ["go", "install", "-trimpath"]
        if tool.ldflags:
            cmd += ["-ldflags", tool.ldflags]
        _run(cmd + [f"{tool.module}@{tool.version}"])
    _stamp_path(tool).write_text(stamp(tool) + "\n")


def install_all(log: Callable[[str], None] = print) -> None:
    if shutil.which("go") is None:
        raise VcplError("go is not on PATH; install Go 1.26.5 or newer (the kyverno CLI v1.19.0 needs it)")
    paths.TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        if is_current(tool):
            log(f"{tool.name} {tool.version}: cached")
            continue
        log(f"{tool.name} {tool.version}: building" + (" (several minutes on a cold Go cache)" if tool.package else ""))
        install(tool)


def versions() -> dict[str, str]:
    return {tool.name: tool.version for tool in TOOLS}
