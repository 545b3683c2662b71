"""The CLI as a person uses it: exit codes 0/1/2, one-line errors, GITGATE_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from helpers import Approvals, Keys, Service, free_port, sh, wait_for

from gitgate.cli import main


def gitgate(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitgate", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_serve_with_no_flags_is_ready_at_once_and_verifies_every_commit(tmp_path: Path) -> None:
    """The README's first command: an empty folder, `gitgate serve`, a gate, an approval."""
    svc = Service([], tmp_path).start()
    try:
        denied = svc.check("confirm-promotion", "test", "podinfo", "abc")
        assert denied.status_code == 403
        assert "gates/test/podinfo.yaml" in denied.text
        assert svc.status()["trust"].startswith("verify all: SSH signers in")
        repo = tmp_path / "approvals"
        approval = '\n  approvals:\n    - hook: confirm-promotion\n      checksum: "abc"\n'
        text = (repo / "gates/test/podinfo.yaml").read_text().replace("\n  approvals: []\n", approval)
        (repo / "gates/test/podinfo.yaml").write_text(text)
        sh("git", "commit", "-qam", "approve podinfo", cwd=repo)  # signed by init's local config
        assert sh("git", "log", "-1", "--format=%G?", cwd=repo) == "G\n"
        wait_for(lambda: svc.check("confirm-promotion", "test", "podinfo", "abc").status_code == 200, timeout=5)
        # An unsigned commit in the same repo changes nothing.
        (repo / "gates/test/podinfo.yaml").write_text(text.replace('"abc"', '"evil"'))
        sh("git", "-c", "commit.gpgsign=false", "commit", "-qam", "unsigned", cwd=repo)
        wait_for(lambda: svc.status()["refused"], timeout=5)
        assert svc.check("confirm-promotion", "test", "podinfo", "abc").status_code == 200
        assert svc.check("confirm-promotion", "test", "podinfo", "evil").status_code == 403
        # A second service on the same state dir is refused: one process per state dir.
        second = gitgate("serve", "--listen", f"127.0.0.1:{free_port()}", cwd=tmp_path)
        assert second.returncode == 1
        assert "in use by another gitgate process" in one_line_error(second)
    finally:
        svc.stop()


def test_serve_refuses_a_repo_without_trust_roots(approvals: Approvals, tmp_path: Path) -> None:
    proc = gitgate("serve", "--repo", approvals.url, cwd=tmp_path)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert "no trust roots" in line and "--trust-ssh" in line and "--verify off" in line


def test_flags_read_gitgate_variables(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "GITGATE_REPO": approvals.url,
        "GITGATE_TRUST_SSH": str(keys.allowed_signers),
        "GITGATE_LISTEN": f"127.0.0.1:{port}",
        "GITGATE_STATE_DIR": str(tmp_path / "st"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitgate", "serve"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        status = wait_for(lambda: _ready(port), timeout=20)
        assert status["repo"] == approvals.url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(port: int) -> dict[str, object] | None:
    try:
        resp = requests.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=1)
    except requests.RequestException:
        return None
    return resp.json() if resp.ok and resp.json()["ready"] else None  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["serve", "--listen", "nonsense"], {}, "--listen 'nonsense': use HOST:PORT"),
        (
            ["serve", "--interval", "soon"],
            {"GITGATE_VERIFY": "off", "GITGATE_REPO": "/nonexistent"},
            "--interval: 'soon' is not a duration",
        ),
        (["serve"], {"GITGATE_VERIFY": "sometimes"}, "--verify 'sometimes': use all, head or off"),
        (["serve", "--path", "../etc"], {"GITGATE_VERIFY": "off"}, "--path '../etc': name a folder inside the repo"),
        (["check", "--namespace", "test", "--name", "x", "--hook", "confirm-everything"], {}, "--hook"),
        (["check", "--namespace", "Bad_NS", "--name", "x", "--hook", "rollback"], {}, "not a Kubernetes"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], env: dict[str, str], message: str) -> None:
    proc = gitgate(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr
    assert message in one_line_error(proc)


def test_unknown_flags_and_commands_exit_2(tmp_path: Path) -> None:
    assert gitgate("serve", "--no-such-flag", cwd=tmp_path).returncode == 2  # never silently ignored
    assert gitgate("serve", "--require-approvals", "2", cwd=tmp_path).returncode == 2  # needs --forge
    assert gitgate("frobnicate", cwd=tmp_path).returncode == 2
    assert gitgate(cwd=tmp_path).returncode == 2
    version = gitgate("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("gitgate ")


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`gitgate schema | head -1`: the reader leaves early; no traceback, the shell's SIGPIPE status."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before gitgate writes a byte: every write fails
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gitgate", "schema"], cwd=tmp_path, stdout=write_end, capture_output=False,
            stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_commands_load_only_what_they_run(tmp_path: Path) -> None:
    """The CLI module imports no command: `gitgate lint` does not load the web service, and each
    process the service starts to parse a large repo (which imports the `gitgate` script, so the
    CLI) starts in a fraction of the time and memory."""
    probe = (
        "import sys, gitgate.cli; print(sorted(m for m in ('flask', 'waitress', 'gitgate.server') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    assert gitgate("schema", cwd=tmp_path).returncode == 0


def test_init_makes_a_signed_repo_with_trust_roots_outside_it(tmp_path: Path) -> None:
    proc = gitgate("init", "repo", "--state-dir", "st", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    repo, state = tmp_path / "repo", tmp_path / "st"
    for name in ("gates/test/podinfo.yaml", "gitgate.yaml", "README.md", "CODEOWNERS"):
        assert (repo / name).is_file(), name
    signers = state / "trust" / "allowed_signers"
    assert signers.is_file() and not any(repo.rglob("allowed_signers"))
    verdict = sh("git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "log", "-1", "--format=%G?", cwd=repo)
    assert verdict == "G\n"
    assert main(["lint", str(repo)]) == 0
    again = gitgate("init", "repo", "--state-dir", "st", cwd=tmp_path)
    assert again.returncode == 1
    assert "exists and is not empty" in one_line_error(again)


def test_check_and_verify_read_the_repo_as_the_service_would(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    trust = ["--repo", approvals.url, "--trust-ssh", str(keys.allowed_signers), "--state-dir", str(tmp_path / "st")]
    ask = ["check", "--namespace", "test", "--name", "podinfo", "--hook", "confirm-promotion", "--checksum", "abc"]
    closed = gitgate(*ask, *trust, cwd=tmp_path)
    assert closed.returncode == 1
    assert closed.stdout.startswith("closed: confirm-promotion of test/podinfo (checksum abc) is closed")
    approvals.approve("test", "podinfo", "confirm-promotion", "abc")
    approvals.land("approve", keys.alice)
    opened = gitgate(*ask, *trust, cwd=tmp_path)
    assert opened.returncode == 0 and opened.stdout.startswith("open: ")
    ok = gitgate("verify", *trust, cwd=tmp_path)
    assert ok.returncode == 0 and "accepted:" in ok.stdout
    approvals.land("unsigned", keys.nobody)
    refused = gitgate("verify", *trust, cwd=tmp_path)
    assert refused.returncode == 1
    assert "FAIL" in refused.stdout and "not signed" in refused.stdout
    # check still answers: from the head (not verified yet, no state) it is refused -> not ready -> closed
    assert gitgate(*ask, *trust, cwd=tmp_path).returncode == 1


def test_check_and_status_against_a_running_service(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    approvals.approve("test", "podinfo", "confirm-promotion", "abc")
    approvals.land("approve", keys.alice)
    args = ["--repo", approvals.url, "--trust-ssh", str(keys.allowed_signers), "--state-dir", str(tmp_path / "st")]
    svc = Service(args, tmp_path).start()
    try:
        base = ["check", "--url", svc.url, "--namespace", "test", "--name", "podinfo", "--checksum", "abc"]
        assert gitgate(*base, "--hook", "confirm-promotion", cwd=tmp_path).returncode == 0
        closed = gitgate(*base, "--hook", "rollback", cwd=tmp_path)
        assert closed.returncode == 1 and closed.stdout.startswith("closed (403): rollback of test/podinfo")
        status = gitgate("status", "--url", svc.url, cwd=tmp_path)
        assert status.returncode == 0
        assert "ready     yes" in status.stdout and "signed by alice@example.test" in status.stdout
    finally:
        svc.stop()
    down = gitgate("status", "--url", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert down.returncode == 1
    assert "cannot reach gitgate" in one_line_error(down)


def test_json_logs_are_one_json_object_per_line(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    import json

    approvals.land("unsigned", keys.nobody)  # something worth a warning in the log
    args = [
        "--repo",
        approvals.url,
        "--trust-ssh",
        str(keys.allowed_signers),
        "--state-dir",
        str(tmp_path / "st"),
        "--verify",
        "head",
        "--log-format",
        "json",
    ]
    svc = Service(args, tmp_path).start(ready=False)
    try:
        wait_for(lambda: svc.status()["refused"])
    finally:
        svc.stop()
    records = [json.loads(line) for line in svc.log.read_text().splitlines() if line.strip()]
    assert any(r["level"] == "warning" and "not signed" in r["message"] for r in records)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)


def test_demo_tells_the_whole_story_and_the_gate_opens(tmp_path: Path) -> None:
    proc = gitgate("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "gitgate: 403 confirm-promotion of test/podinfo (checksum 7b9c6d5f8d) is closed" in out
    assert "gitgate opened approval request #1 by itself" in out
    assert "to approve, merge file://" in out
    assert "Flagger polls: 200 Approved" in out
    assert "G Merge request #1" in out
    assert "rollback stays closed without its own approval: 403" in out
    repo = tmp_path / "demo" / "approvals"
    assert "7b9c6d5f8d" in (repo / "gates/test/podinfo.yaml").read_text()
