"""A git server on 127.0.0.1 for the rehearsal's GitOps engine: `git http-backend` (git's own
smart-HTTP CGI program) behind a small threaded HTTP server.

`snapshot()` commits the working tree as it is (tracked and untracked, minus what .gitignore
excludes) plus rehearsal-only directories into a bare repository, so the engine syncs what the
developer has on disk, committed or not.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from vcpl.errors import VcplError

BRANCH = "main"
_AUTHOR = {"GIT_AUTHOR_NAME": "vcpl rehearsal", "GIT_AUTHOR_EMAIL": "rehearsal@vcpl.invalid",
           "GIT_COMMITTER_NAME": "vcpl rehearsal", "GIT_COMMITTER_EMAIL": "rehearsal@vcpl.invalid"}


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None, input_: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=input_, capture_output=True)
    if proc.returncode != 0:
        raise VcplError(f"git {' '.join(args[:2])} in {cwd}: {proc.stderr.decode(errors='replace').strip()}")
    return os.fsdecode(proc.stdout)  # file names need not be UTF-8


def _env() -> dict[str, str]:
    return {**os.environ, **_AUTHOR, "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/tmp")}


class Repository:
    """A bare repository at `bare`, fed from a work tree at `work` (both owned by the rehearsal)."""

    def __init__(self, base: Path) -> None:
        self.bare = base / "venue-connectivity.git"
        self.work = base / "work"

    def snapshot(self, source: Path, extra: dict[str, str], message: str) -> str:
        """Commit source's files (as git would see them, ignored ones excluded) plus `extra`
        (relative path -> content) and return the commit id."""
        if not self.work.exists():
            self.work.mkdir(parents=True)
            _git("init", "-q", "-b", BRANCH, cwd=self.work, env=_env())
            _git("init", "-q", "--bare", "-b", BRANCH, str(self.bare), cwd=self.work, env=_env())
            _git("remote", "add", "origin", str(self.bare), cwd=self.work, env=_env())
        if (source / ".git").exists():
            listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=source).split("\0")
        else:  # a copy made without what git ignores (a test's scratch repository)
            listed = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
        for child in self.work.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for rel in filter(None, listed):
            src = source / rel
            if not src.is_file():
                continue  # deleted in the work tree but still in the index
            dst = self.work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        for rel, content in extra.items():
            dst = self.work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(content, encoding="utf-8")
        return self.commit(message)

    def commit(self, message: str) -> str:
        env = _env()
        _git("add", "-A", cwd=self.work, env=env)
        _git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work, env=env)
        _git("push", "-q", "origin", f"{BRANCH}:{BRANCH}", cwd=self.work, env=env)
        return _git("rev-parse", "HEAD", cwd=self.work, env=env).strip()


class _Handler(BaseHTTPRequestHandler):
    project_root: Path

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # the engine polls; its requests would drown the test output

    def _cgi(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "GIT_PROJECT_ROOT": str(self.project_root), "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command, "PATH_INFO": url.path, "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0], "PATH": "/usr/bin:/bin",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode(errors="replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _cgi
    do_POST = _cgi


class GitServer:
    """Serves every bare repository under `root` at http://127.0.0.1:<port>/<name>.git; stopped on exit."""

    def __init__(self, root: Path) -> None:
        handler = type("Handler", (_Handler,), {"project_root": root})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http-backend", daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> GitServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
