#!/usr/bin/env python3
"""Install the pinned toolchain of the cluster rehearsal into .tools/rehearsal/bin (idempotent).

`make setup-rehearsal` runs this. A real Kubernetes control plane as local processes needs:

* etcd            Debian's `etcd-server` package (apt-get, as root); if apt cannot be used (or
                  VCPL_REHEARSAL_ETCD=go), the Go module go.etcd.io/etcd/server/v3, copied like
                  kubernetes below since its go.mod replaces its siblings with ../ paths;
* kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
                  built from the Go module k8s.io/kubernetes. Its module zip lacks the staging
                  modules, so the module is copied to .tools/rehearsal/src/ and the
                  `./staging/src/k8s.io/*` replace directives of its go.mod are pointed at the
                  published k8s.io/<name> modules of the same patch;
* kwok            sigs.k8s.io/kwok/cmd/kwok, which simulates nodes and pod lifecycles;
* flux            Flux's source-controller and kustomize-controller (github.com/fluxcd/<name>), the
                  GitOps engine of the rehearsal. Their go.mod replaces ./api (a separate module the
                  zip omits) and the module copy points it at the published api module of the same
                  tag; source-controller's also pins github.com/fluxcd/pkg/artifact (see
                  FLUX_PINNED_DEPENDENCIES). Their CRDs (config/crd/bases) go to .tools/rehearsal/flux-crds;
* libfaketime     Debian's `libfaketime` (apt-get, as root): the session rehearsal moves the QuickFIX
                  engine's clock to a venue's session close and open (`make setup-sessions` runs
                  only this step, with the quickfix wheel);
* kind            sigs.k8s.io/kind, for `make rehearse BACKEND=kind` where a container engine runs
                  (built everywhere: it is small, and a machine with an engine then needs nothing more);
* kyverno         the Kyverno admission controller, ./cmd/kyverno of github.com/kyverno/kyverno
                  (the module the kyverno CLI of `make setup` comes from, so the Go build cache is
                  mostly warm). Its go.mod has replace directives, so it is built inside the
                  downloaded (read-only) module, like vcpl.tools builds the CLI; its CRDs
                  (config/crds/**) are copied to .tools/rehearsal/kyverno-crds for
                  vcpl.rehearsal.admission to apply.

Every version is pinned below. Each tool gets a stamp (.tools/rehearsal/stamps/<tool>) holding
the version it was built at; a tool whose stamp matches and whose binaries exist is skipped, so a
second run takes about a second. Nothing is downloaded except through apt and the Go module proxy.
Go's module and build caches stay where Go puts them. Stdlib only: it runs before the venv exists.

Usage: setup.py [--force TOOL ...] [--list]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / ".tools" / "rehearsal"
BIN = BASE / "bin"
SRC = BASE / "src"
STAMPS = BASE / "stamps"
LOGS = BASE / "logs"
KYVERNO_CRDS = BASE / "kyverno-crds"
FLUX_CRDS = BASE / "flux-crds"

# --- pinned versions -------------------------------------------------------------------------
ETCD_DEB = "3.4.23-4+b4"          # Debian 12 (bookworm) etcd-server
FAKETIME_DEB = "0.9.10-2.1"       # Debian 12 (bookworm) libfaketime
ETCD_GO = "v3.5.21"               # fallback: go.etcd.io/etcd/server/v3 (the etcd client k8s 1.33 uses)
KUBERNETES = "v1.33.13"           # k8s.io/kubernetes; staging modules k8s.io/<name> v0.33.13
KWOK = "v0.7.0"                   # sigs.k8s.io/kwok (built against k8s.io/* v0.33)
KIND = "v0.32.0"                  # sigs.k8s.io/kind (BACKEND=kind only)
KYVERNO = "v1.19.0"               # github.com/kyverno/kyverno ./cmd/kyverno (needs Go >= 1.26)
FLUX = "v1.9.6"                   # github.com/fluxcd/{source,kustomize}-controller (Flux 2.8; go 1.26.0)
# source-controller v1.9.6 requires github.com/fluxcd/pkg/artifact v0.18.3, whose zip the module
# proxy here does not serve (HTTP 403; v0.18.0 is served). The patch releases between them
# change no API source-controller uses, so the build is pinned to v0.18.0.
FLUX_PINNED_DEPENDENCIES = {"source-controller": {"github.com/fluxcd/pkg/artifact": "v0.18.0"}}
MIN_GO = (1, 24)                  # k8s.io/kubernetes v1.33 and kwok v0.7 declare go 1.24.0

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# Staging modules never needed by the four commands and not published by the proxy.
DROPPED_STAGING = ("k8s.io/sample-apiserver",)


class SetupError(Exception):
    """One line for the user; no traceback."""


def staging_version(kube_version: str) -> str:
    """v1.33.13 -> v0.33.13 (the published staging modules follow the kubernetes minor/patch)."""
    m = re.fullmatch(r"v1\.(\d+)\.(\d+)", kube_version)
    if not m:
        raise SetupError(f"unexpected kubernetes version {kube_version!r}")
    return f"v0.{m.group(1)}.{m.group(2)}"


# --- helpers -----------------------------------------------------------------------------------
def display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def log(msg: str) -> None:
    print(f"setup-rehearsal: {msg}", flush=True)


def run(cmd: list[str], *, logname: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run cmd, appending its output to logs/<logname>.log; on failure raise one line."""
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = LOGS / f"{logname}.log"
    with logfile.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except FileNotFoundError:
            raise SetupError(f"{cmd[0]} is not installed (needed for {logname})") from None
        fh.write(proc.stdout)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith("go: downloading")]
        last = lines[-1].strip() if lines else "(no output)"
        raise SetupError(f"{logname}: `{' '.join(cmd[:3])} ...` failed (exit {proc.returncode}): {last} [full log: {display(logfile)}]")
    return proc.stdout


def stamp_ok(tool: str, version: str, binaries: tuple[str, ...]) -> bool:
    stamp = STAMPS / tool
    if not stamp.is_file() or stamp.read_text().strip() != version:
        return False
    return all(os.access(BIN / b, os.X_OK) for b in binaries)


def write_stamp(tool: str, version: str) -> None:
    STAMPS.mkdir(parents=True, exist_ok=True)
    (STAMPS / tool).write_text(version + "\n")


def go_env() -> dict[str, str]:
    go = shutil.which("go")
    if not go:
        raise SetupError("go is not installed: the rehearsal builds kube-apiserver and kwok from Go modules (Go >= 1.24)")
    out = subprocess.run([go, "env", "GOVERSION"], stdout=subprocess.PIPE, text=True).stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_GO:
        raise SetupError(f"Go {out or '?'} is too old: k8s.io/kubernetes {KUBERNETES} needs Go >= {MIN_GO[0]}.{MIN_GO[1]}")
    env = dict(os.environ)
    # Build with the local toolchain (never download another), pure Go, outside any workspace.
    env.update(GOWORK="off", GOFLAGS="-mod=mod", CGO_ENABLED="0", GOTOOLCHAIN="local")
    return env


# --- etcd ----------------------------------------------------------------------------------------
def apt_usable() -> str | None:
    """None if apt-get can install here, else the reason why not."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-query"):
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install"
    return None


def install_deb(package: str, version: str, logname: str) -> None:
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    if installed != version:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        policy = subprocess.run(["apt-cache", "policy", package], stdout=subprocess.PIPE, text=True).stdout
        if version not in policy:
            run(["apt-get", "update", "-q"], logname=logname, env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", f"{package}={version}"], logname=logname, env=env)


def install_etcd_deb() -> None:
    install_deb("etcd-server", ETCD_DEB, "etcd")
    etcd = Path("/usr/bin/etcd")
    if not os.access(etcd, os.X_OK):
        raise SetupError(f"etcd-server {ETCD_DEB} is installed but {etcd} is missing")
    link = BIN / "etcd"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(etcd)


def copy_module(module: str, version: str, env: dict[str, str], logname: str) -> Path:
    """`go mod download` a module, then copy it to src/<name>-<version> (writable) and return that."""
    out = run(["go", "mod", "download", "-json", f"{module}@{version}"], logname=logname, env=env)
    m = re.search(r'"Dir":\s*"([^"]+)"', out)
    if not m:
        raise SetupError(f"go mod download {module}@{version} reported no module directory")
    src = SRC / f"{logname}-{version}"
    if src.exists():
        make_writable(src)
        shutil.rmtree(src)
    SRC.mkdir(parents=True, exist_ok=True)
    # The module cache is read-only: copy the files (not their modes), then open the folders.
    shutil.copytree(m.group(1), src, copy_function=shutil.copyfile)
    make_writable(src)
    return src


def rewrite_etcd_gomod(text: str) -> str:
    """etcd's server module replaces its siblings with ../<dir>, which a module copy lacks; its
    require block already pins them at the same tag (client/v2 as v2.305.x), so the relative
    replaces are dropped, as are the FORBIDDEN_DEPENDENCY guards."""
    text, n = re.subn(r"^\s*\S+ => \.\.?/\S+\s*\n", "", text, flags=re.M)
    if n == 0 or re.search(r"=> \.", text):
        raise SetupError("go.etcd.io/etcd/server/v3 go.mod: could not drop its relative replace directives")
    return text


def install_etcd_go() -> None:
    # `go install ...@version` refuses a module whose go.mod has replace directives, as etcd's has.
    env = go_env()
    src = copy_module("go.etcd.io/etcd/server/v3", ETCD_GO, env, "etcd")
    gomod = src / "go.mod"
    gomod.write_text(rewrite_etcd_gomod(gomod.read_text()))
    link = BIN / "etcd"
    if link.is_symlink():
        link.unlink()
    run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(link), "."], logname="etcd", cwd=src, env=env)


ETCD_FROM = os.environ.get("VCPL_REHEARSAL_ETCD", "auto")  # auto | deb | go


def setup_etcd(force: bool) -> str:
    deb_version, go_version = f"deb:etcd-server={ETCD_DEB}", f"go:go.etcd.io/etcd/server/v3@{ETCD_GO}"
    reason = apt_usable() if ETCD_FROM != "go" else "VCPL_REHEARSAL_ETCD=go"
    if reason is not None and ETCD_FROM == "deb":
        raise SetupError(f"etcd: VCPL_REHEARSAL_ETCD=deb but {reason}")
    if not force and (stamp_ok("etcd", deb_version, ("etcd",)) if reason is None else False):
        return "up to date"
    if not force and stamp_ok("etcd", go_version, ("etcd",)) and ETCD_FROM != "deb":
        return "up to date"
    if reason is None:
        try:
            install_etcd_deb()
            write_stamp("etcd", deb_version)
            return deb_version
        except SetupError as exc:
            if ETCD_FROM == "deb":
                raise
            reason = f"apt-get could not install etcd-server={ETCD_DEB} ({exc})"
    log(f"etcd: {reason}; building go.etcd.io/etcd/server/v3@{ETCD_GO} from the Go module instead")
    install_etcd_go()
    write_stamp("etcd", go_version)
    return go_version


# --- kubernetes -----------------------------------------------------------------------------------
def make_writable(tree: Path) -> None:
    for dirpath, _dirs, _files in os.walk(tree):
        os.chmod(dirpath, 0o755)


def rewrite_gomod(text: str, staging: str) -> str:
    """Point ./staging/src/k8s.io/* replaces at published modules; drop the unpublished ones."""
    for mod in DROPPED_STAGING:
        text = re.sub(rf"^\s*{re.escape(mod)} v0\.0\.0\s*\n", "", text, flags=re.M)
        text = re.sub(rf"^\s*{re.escape(mod)} => \./staging/src/{re.escape(mod)}\s*\n", "", text, flags=re.M)
    text, n = re.subn(r"^(\s*)(k8s\.io/[A-Za-z0-9._-]+) => \./staging/src/k8s\.io/[A-Za-z0-9._-]+\s*$",
                      rf"\1\2 => \2 {staging}", text, flags=re.M)
    if n == 0 or "./staging/" in text:
        raise SetupError("k8s.io/kubernetes go.mod: could not rewrite its ./staging replace directives")
    return text


def setup_kubernetes(force: bool) -> str:
    if not force and stamp_ok("kubernetes", KUBERNETES, KUBE_COMMANDS):
        return "up to date"
    env = go_env()
    staging = staging_version(KUBERNETES)
    src = copy_module("k8s.io/kubernetes", KUBERNETES, env, "kubernetes")
    gomod = src / "go.mod"
    gomod.write_text(rewrite_gomod(gomod.read_text(), staging))
    minor = KUBERNETES.split(".")[1]
    ldflags = " ".join([
        "-s", "-w",
        f"-X k8s.io/component-base/version.gitVersion={KUBERNETES}",
        "-X k8s.io/component-base/version.gitMajor=1",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        f"-X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES}",
        "-X k8s.io/client-go/pkg/version.gitMajor=1",
        f"-X k8s.io/client-go/pkg/version.gitMinor={minor}",
    ])
    BIN.mkdir(parents=True, exist_ok=True)
    run(["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(BIN) + os.sep]
        + [f"./cmd/{c}" for c in KUBE_COMMANDS], logname="kubernetes", cwd=src, env=env)
    missing = [c for c in KUBE_COMMANDS if not os.access(BIN / c, os.X_OK)]
    if missing:
        raise SetupError(f"go build of k8s.io/kubernetes {KUBERNETES} produced no {', '.join(missing)}")
    write_stamp("kubernetes", KUBERNETES)
    return KUBERNETES


# --- kwok ------------------------------------------------------------------------------------------
def go_install(tool: str, package: str, version: str, force: bool) -> str:
    """`go install package@version` into BIN (for modules without replace directives)."""
    if not force and stamp_ok(tool, version, (tool,)):
        return "up to date"
    env = go_env()
    env["GOBIN"] = str(BIN)
    BIN.mkdir(parents=True, exist_ok=True)
    run(["go", "install", "-trimpath", "-ldflags=-s -w", f"{package}@{version}"], logname=tool, env=env)
    write_stamp(tool, version)
    return version


def setup_kwok(force: bool) -> str:
    return go_install("kwok", "sigs.k8s.io/kwok/cmd/kwok", KWOK, force)


# --- libfaketime --------------------------------------------------------------------------------------
def setup_libfaketime(force: bool) -> str:
    version = f"deb:libfaketime={FAKETIME_DEB}"
    if not force and stamp_ok("libfaketime", version, ()):
        return "up to date"
    reason = apt_usable()
    if reason:
        raise SetupError(f"libfaketime: {reason} (install the Debian package libfaketime={FAKETIME_DEB} yourself)")
    install_deb("libfaketime", FAKETIME_DEB, "libfaketime")
    write_stamp("libfaketime", version)
    return version


# --- kind -------------------------------------------------------------------------------------------------
def setup_kind(force: bool) -> str:
    return go_install("kind", "sigs.k8s.io/kind", KIND, force)


# --- kyverno ----------------------------------------------------------------------------------------
KYVERNO_MODULE = "github.com/kyverno/kyverno"


def setup_kyverno(force: bool) -> str:
    if not force and stamp_ok("kyverno", KYVERNO, ("kyverno",)) and any(KYVERNO_CRDS.rglob("*.yaml")):
        return "up to date"
    env = go_env()
    out = subprocess.run(["go", "env", "GOVERSION"], stdout=subprocess.PIPE, text=True, env=env).stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < (1, 26):
        raise SetupError(f"Go {out or '?'} is too old: {KYVERNO_MODULE} {KYVERNO} declares go 1.26")
    # Built in place in the read-only module cache: its go.mod/go.sum pin the graph, never rewritten.
    env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
    out = run(["go", "mod", "download", "-json", f"{KYVERNO_MODULE}@{KYVERNO}"], logname="kyverno", env=env)
    m = re.search(r'"Dir":\s*"([^"]+)"', out)
    if not m:
        raise SetupError(f"go mod download {KYVERNO_MODULE}@{KYVERNO} reported no module directory")
    BIN.mkdir(parents=True, exist_ok=True)
    ldflags = f"-s -w -X {KYVERNO_MODULE}/pkg/version.BuildVersion={KYVERNO}"
    run(["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(BIN / "kyverno"), "./cmd/kyverno"],
        logname="kyverno", cwd=Path(m.group(1)), env=env)
    if KYVERNO_CRDS.exists():
        shutil.rmtree(KYVERNO_CRDS)
    shutil.copytree(Path(m.group(1)) / "config" / "crds", KYVERNO_CRDS, copy_function=shutil.copyfile)
    make_writable(KYVERNO_CRDS)
    write_stamp("kyverno", KYVERNO)
    return KYVERNO


# --- flux ---------------------------------------------------------------------------------------------
FLUX_CONTROLLERS = ("source-controller", "kustomize-controller")


def rewrite_flux_gomod(text: str, controller: str) -> str:
    """Drop the ./api replace (the require block pins the published api module at the same tag)
    and add the pinned dependency replaces."""
    text, n = re.subn(rf"^replace github\.com/fluxcd/{controller}/api => \./api\s*\n", "", text, flags=re.M)
    if n != 1 or f"github.com/fluxcd/{controller}/api {FLUX}" not in text:
        raise SetupError(f"github.com/fluxcd/{controller} go.mod: expected one ./api replace and api {FLUX} in its require block")
    for module, version in FLUX_PINNED_DEPENDENCIES.get(controller, {}).items():
        text += f"\nreplace {module} => {module} {version}\n"
    return text


def setup_flux(force: bool) -> str:
    if not force and stamp_ok("flux", FLUX, FLUX_CONTROLLERS) and any(FLUX_CRDS.rglob("*.yaml")):
        return "up to date"
    env = go_env()
    BIN.mkdir(parents=True, exist_ok=True)
    if FLUX_CRDS.exists():
        shutil.rmtree(FLUX_CRDS)
    for controller in FLUX_CONTROLLERS:
        src = copy_module(f"github.com/fluxcd/{controller}", FLUX, env, controller)
        gomod = src / "go.mod"
        gomod.write_text(rewrite_flux_gomod(gomod.read_text(), controller))
        run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(BIN / controller), "."], logname=controller, cwd=src, env=env)
        shutil.copytree(src / "config" / "crd" / "bases", FLUX_CRDS / controller, copy_function=shutil.copyfile)
    write_stamp("flux", FLUX)
    return FLUX


TOOLS = {"etcd": setup_etcd, "kubernetes": setup_kubernetes, "kwok": setup_kwok, "libfaketime": setup_libfaketime, "kind": setup_kind,
         "kyverno": setup_kyverno, "flux": setup_flux}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="install the pinned cluster-rehearsal toolchain into .tools/rehearsal/bin")
    parser.add_argument("--force", action="append", choices=sorted(TOOLS), default=[], help="rebuild this tool even if stamped")
    parser.add_argument("--only", action="append", choices=sorted(TOOLS), default=[], help="install only this tool")
    parser.add_argument("--list", action="store_true", help="print the pinned versions and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(f"etcd        deb etcd-server={ETCD_DEB} (fallback go.etcd.io/etcd/server/v3@{ETCD_GO})")
        print(f"kubernetes  k8s.io/kubernetes@{KUBERNETES} ({', '.join(KUBE_COMMANDS)}), staging {staging_version(KUBERNETES)}")
        print(f"kwok        sigs.k8s.io/kwok/cmd/kwok@{KWOK}")
        print(f"libfaketime deb libfaketime={FAKETIME_DEB}")
        print(f"kind        sigs.k8s.io/kind@{KIND} (BACKEND=kind)")
        print(f"kyverno     {KYVERNO_MODULE}@{KYVERNO} ./cmd/kyverno (admission controller)")
        print(f"flux        github.com/fluxcd/{{{','.join(FLUX_CONTROLLERS)}}}@{FLUX}")
        return 0
    BIN.mkdir(parents=True, exist_ok=True)
    for tool, step in TOOLS.items():
        if args.only and tool not in args.only:
            continue
        start = time.monotonic()
        try:
            result = step(tool in args.force)
        except SetupError as exc:
            print(f"setup-rehearsal: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"setup-rehearsal: interrupted while installing {tool}", file=sys.stderr)
            return 130
        except OSError as exc:
            print(f"setup-rehearsal: error: {tool}: {exc}", file=sys.stderr)
            return 1
        log(f"{tool}: {result} ({time.monotonic() - start:.0f}s)")
    log(f"binaries in {display(BIN)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
