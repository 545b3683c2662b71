"""--repo over HTTP with a token: a real git smart-HTTP server (git http-backend) on loopback that
demands the token, and the real service fetching through it."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Approvals, Keys, Service, wait_for
from waitress.server import create_server

TOKEN = "s3cret-token"


class GitHttpBackend:
    """WSGI -> CGI bridge to `git http-backend`, requiring Basic auth with TOKEN as the password."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen_auth: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        self.seen_auth.append(auth)
        expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        if auth != expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ["PATH_INFO"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().split("\r\n") if line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start_response(status, [(k, v) for k, v in headers if k.lower() != "status"])
        return [payload]


@pytest.fixture
def http_remote(approvals: Approvals) -> Iterator[tuple[str, GitHttpBackend]]:
    app = GitHttpBackend(approvals.remote.parent)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/{approvals.remote.name}", app
    finally:
        server.close()


def test_fetches_over_http_with_a_token_from_the_environment(
    approvals: Approvals, keys: Keys, tmp_path: Path, http_remote: tuple[str, GitHttpBackend]
) -> None:
    url, backend = http_remote
    approvals.approve("test", "podinfo", "confirm-promotion", "abc")
    approvals.land("approve", keys.alice)
    args = [
        "--repo",
        url,
        "--trust-ssh",
        str(keys.allowed_signers),
        "--state-dir",
        str(tmp_path / "st"),
        "--interval",
        "1s",
    ]
    svc = Service(args, tmp_path, env={"GITHUB_TOKEN": TOKEN}).start()
    try:
        assert svc.check("confirm-promotion", "test", "podinfo", "abc").status_code == 200
        approvals.approve("test", "podinfo", "confirm-rollout", "abc")
        approvals.land("approve rollout", keys.alice)
        wait_for(lambda: svc.check("confirm-rollout", "test", "podinfo", "abc").status_code == 200, timeout=10)
    finally:
        svc.stop()
    assert backend.seen_auth and all(a.startswith("Basic ") for a in backend.seen_auth)
    # The token is never written to disk in the state dir, and never logged.
    for file in (tmp_path / "st").rglob("*"):
        if file.is_file():
            assert TOKEN.encode() not in file.read_bytes(), file
    assert TOKEN not in svc.log.read_text()


def test_a_wrong_token_is_a_fetch_failure_that_keeps_the_service_not_ready(
    approvals: Approvals, keys: Keys, tmp_path: Path, http_remote: tuple[str, GitHttpBackend]
) -> None:
    url, _ = http_remote
    args = ["--repo", url, "--trust-ssh", str(keys.allowed_signers), "--state-dir", str(tmp_path / "st")]
    svc = Service(args, tmp_path, env={"GITHUB_TOKEN": "not-the-token-xyz"}).start(ready=False)
    try:
        status = wait_for(lambda: svc.status() if svc.status()["last_fetch"]["error"] else None)
        assert status["ready"] is False
        assert svc.check("confirm-promotion", "test", "podinfo", "abc").status_code == 403
        assert "authentication failed" in status["last_fetch"]["error"]
        assert "not-the-token-xyz" not in svc.log.read_text()
    finally:
        svc.stop()
