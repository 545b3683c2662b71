"""The status page (`GET /`) as a person sees it: a real Chromium (Debian's, driven by Playwright for
Python, never a downloaded browser) loads it from a real waitress server, in states built here.

Run `bash tests/install_browser.sh` once (as root it installs Debian's `chromium`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import waitress
from flask import Flask
from test_server import COMMIT, NOW, SUM, Clock, gate, payload

from gitgate.commands.serve import THREADS
from gitgate.metrics import Metrics
from gitgate.model import Approval, FreezeWindow, Policy, Snapshot
from gitgate.request import RequestSpec
from gitgate.server import create_app
from gitgate.status import PAGE_GATES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REFUSED = "e" * 40
PR = "https://git.example.test/acme/approvals/pull/42"
OPEN_PR = "https://git.example.test/acme/approvals/pull/43"


@dataclass
class Source:
    """The reconciler's seam, as in test_server, with what the page shows about commits."""

    snapshot: Snapshot | None
    verify: str = "all"
    refused: list[dict[str, Any]] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "repo": "https://git.example.test/acme/approvals.git",
            "branch": "main",
            "verify": self.verify,
            "ready": snap is not None,
            "verified": None
            if snap is None
            else {
                "commit": snap.commit,
                "signer": "alice@example.test",
                "committed_at": (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "serving": True,
            },
            "last_fetch": {"at": "2026-11-23T09:59:30Z", "ok_at": "2026-11-23T09:59:30Z", "error": None},
            "refused": self.refused,
        }

    def trigger(self) -> None:
        pass


class OpenRequests:
    """What the service asks of its requester for the page: one approval request already open."""

    def url_for(self, spec: RequestSpec) -> str | None:
        return OPEN_PR if str(spec.canary) == "test/newapp" else None

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "branch": "gitgate/test/newapp/confirm-rollout",
                "canary": "test/newapp",
                "hook": "confirm-rollout",
                "checksum": SUM,
                "state": "opened",
                "url": OPEN_PR,
                "number": 43,
                "error": None,
                "asked_at": "2026-11-23T09:58:00Z",
            }
        ]


def snapshot() -> Snapshot:
    gates = [
        gate("test", "podinfo", Approval("confirm-promotion", SUM, request=PR, note="1.4.2, load-tested", line=9)),
        gate("test", "quiet"),
        gate(
            "prod",
            "api",
            Approval("*", "*", line=9),
            freeze=(FreezeWindow("0 9 * * MON", timedelta(hours=8), reason="Monday release review <b>"),),
        ),
    ]
    return Snapshot(COMMIT, "gates", {g.canary: g for g in gates})


@contextlib.contextmanager
def running(app: Flask) -> Iterator[str]:
    """`app` behind waitress on a free port, as `gitgate serve` runs it."""
    sockets: dict[int, Any] = {}
    srv = waitress.create_server(app, map=sockets, host="127.0.0.1", port=0, threads=THREADS, ident="gitgate")
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            srv.asyncore.loop(timeout=0.05, map=sockets, use_poll=True, count=1)

    thread = threading.Thread(target=loop, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=10)
        srv.task_dispatcher.shutdown()
        for dispatcher in list(sockets.values()):
            dispatcher.close()


def serve(source: Source) -> Flask:
    return create_app(source=source, metrics=Metrics(), clock=Clock(NOW), requester=OpenRequests())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/install_browser.sh` (as root) first")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Seen:
    text: str
    sections: dict[str, str]
    links: list[str]
    rows: list[list[str]]
    refresh: str | None


def look(browser: Any, url: str, shot: Path) -> Seen:
    """Load the page as a person would and read what is visible."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    try:
        resp = page.goto(url + "/", wait_until="load")
        assert resp is not None
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/html")
        page.screenshot(path=str(shot), full_page=True)
        sections = {s.get_attribute("id"): s.inner_text() for s in page.locator("section").all()}
        return Seen(
            text=page.locator("body").inner_text(),
            sections=sections,
            links=[a.get_attribute("href") or "" for a in page.locator("a").all()],
            rows=[[td.inner_text() for td in tr.locator("td").all()] for tr in page.locator("#asked tr.check").all()],
            refresh=page.locator('meta[http-equiv="refresh"]').get_attribute("content"),
        )
    finally:
        page.close()


def assert_a_real_picture(shot: Path) -> None:
    assert shot.stat().st_size > 10_000, shot.stat().st_size
    try:
        from PIL import Image
    except ImportError:  # pillow is optional: the byte size alone then
        return
    with Image.open(shot) as img:
        assert img.width >= 1000
        assert img.height >= 600
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is None or len(colors) > 20, "the screenshot is (nearly) a single colour"


def check(url: str, hook: str, body: dict[str, Any]) -> int:
    return requests.post(f"{url}/gate/check/{hook}", data=json.dumps(body), timeout=10).status_code


def rollback(url: str, body: dict[str, Any]) -> int:
    return requests.post(f"{url}/rollback/check", data=json.dumps(body), timeout=10).status_code


def test_a_person_sees_the_commit_refusals_freezes_and_answers(browser: Any, tmp_path: Path) -> None:
    source = Source(
        snapshot(),
        refused=[
            {
                "commit": REFUSED,
                "kind": "signature",
                "reason": "signed by mallory@example.test, who is not trusted",
                "at": "2026-11-23T09:30:00Z",
            }
        ],
    )
    with running(serve(source)) as url:
        assert check(url, "confirm-promotion", payload()) == 200
        assert check(url, "confirm-traffic-increase", payload()) == 403
        assert check(url, "confirm-promotion", payload("api", "prod")) == 403  # frozen
        assert check(url, "confirm-rollout", payload("newapp")) == 403
        assert rollback(url, payload("podinfo", checksum="<script>x</script>")) == 403
        event = payload(metadata={"eventType": "Normal", "eventMessage": "Advance podinfo.test canary weight 20"})
        assert requests.post(f"{url}/events", data=json.dumps(event), timeout=10).status_code == 202
        seen = look(browser, url, tmp_path / "status.png")

    assert seen.refresh is not None
    assert 15 <= int(seen.refresh) <= 30
    assert "UNVERIFIED" not in seen.text
    assert "NOT READY" not in seen.text
    # The commit answered from, who signed it and how old it is.
    assert COMMIT in seen.sections["commit"]
    assert "alice@example.test" in seen.sections["commit"]
    assert "3 hours ago" in seen.sections["commit"]
    # A refused commit and why.
    assert REFUSED[:12] in seen.sections["refused"]
    assert "mallory@example.test, who is not trusted" in seen.sections["refused"]
    # Freezes in force, with their reason (escaped: seen as text, not markup).
    assert (
        "prod/api frozen until 2026-11-23T17:00:00Z (in 7 hours): Monday release review <b>" in seen.sections["freezes"]
    )
    assert "test/podinfo" not in seen.sections["freezes"]
    # Each canary Flagger asked about: every hook's answer now, and why.
    answers = {(r[0], r[1]): r for r in seen.rows}
    assert set(answers) == {
        ("test/podinfo", "confirm-promotion"),
        ("test/podinfo", "confirm-traffic-increase"),
        ("test/podinfo", "rollback"),
        ("prod/api", "confirm-promotion"),
        ("test/newapp", "confirm-rollout"),
    }
    assert answers[("test/podinfo", "confirm-promotion")][2] == "open"
    assert "approved in gates/test/podinfo.yaml:9" in answers[("test/podinfo", "confirm-promotion")][3]
    assert answers[("test/podinfo", "confirm-promotion")][5] == PR
    assert answers[("test/podinfo", "confirm-traffic-increase")][2] == "closed"
    assert answers[("prod/api", "confirm-promotion")][2] == "closed"
    assert "frozen until" in answers[("prod/api", "confirm-promotion")][3]
    assert answers[("test/newapp", "confirm-rollout")][2] == "closed"
    assert answers[("test/newapp", "confirm-rollout")][5] == OPEN_PR
    assert "<script>x</script>" in answers[("test/podinfo", "rollback")][4]  # what Flagger sent, as text
    # A canary nobody asked about and with nothing approved is not in the way.
    assert "test/quiet" not in seen.text
    # Live approvals, open requests, Flagger's events.
    assert "1.4.2, load-tested" in seen.sections["approved"]
    assert "prod/api" in seen.sections["approved"]
    assert "test/newapp" in seen.sections["requests"]
    assert "opened" in seen.sections["requests"]
    assert "Advance podinfo.test canary weight 20" in seen.sections["events"]
    assert PR in seen.links
    assert OPEN_PR in seen.links
    assert "/api/v1/status" not in seen.links  # nothing hidden: no "more" note
    assert_a_real_picture(tmp_path / "status.png")


def test_before_the_first_verified_commit_the_page_says_not_ready(browser: Any, tmp_path: Path) -> None:
    with running(serve(Source(None))) as url:
        assert check(url, "confirm-promotion", payload()) == 403
        seen = look(browser, url, tmp_path / "not-ready.png")
    assert "NOT READY" in seen.text
    assert "Every check answers closed" in seen.text
    assert "nothing yet" in seen.sections["commit"]
    assert answers_of(seen) == {("test/podinfo", "confirm-promotion"): "closed"}
    assert_a_real_picture(tmp_path / "not-ready.png")


def test_under_verify_off_the_page_says_unverified(browser: Any, tmp_path: Path) -> None:
    with running(serve(Source(snapshot(), verify="off"))) as url:
        seen = look(browser, url, tmp_path / "unverified.png")
    assert "UNVERIFIED" in seen.text
    assert "--verify off" in seen.text
    assert "NOT READY" not in seen.text
    assert "unverified commit" in seen.sections["commit"]
    assert COMMIT in seen.sections["commit"]
    assert_a_real_picture(tmp_path / "unverified.png")


def answers_of(seen: Seen) -> dict[tuple[str, str], str]:
    return {(r[0], r[1]): r[2] for r in seen.rows}


def test_with_many_gates_the_page_shows_the_ones_that_matter_and_says_how_many_more(
    browser: Any, tmp_path: Path
) -> None:
    gates = [gate("bulk", f"app{i:05d}") for i in range(500)]
    gates.append(gate("zzz", "approved", Approval("confirm-promotion", SUM, request=PR)))
    source = Source(Snapshot(COMMIT, "gates", {g.canary: g for g in gates}))
    with running(serve(source)) as url:
        assert check(url, "confirm-rollout", payload("zzz-asked", "zzz")) == 403
        seen = look(browser, url, tmp_path / "many.png")
    # The asked-about canary (no gate file) and the approved one come first, whatever their names.
    assert answers_of(seen) == {("zzz/zzz-asked", "confirm-rollout"): "closed"}
    assert "zzz/approved" in seen.sections["approved"]
    assert f"{502 - PAGE_GATES} more canaries not shown" in seen.text
    assert "/api/v1/status" in seen.links


def test_the_page_stays_small_and_cheap_with_10000_gates() -> None:
    gates = [
        gate(f"ns{i % 50}", f"app{i:05d}", Approval("confirm-promotion", SUM, request=f"{PR}{i}"))
        for i in range(10_000)
    ]
    source = Source(Snapshot(COMMIT, "gates", {g.canary: g for g in gates}))
    client = serve(source).test_client()
    for i in range(0, 10_000, 7):  # Flagger asked about 1,429 of them
        body = json.dumps(payload(f"app{i:05d}", f"ns{i % 50}")).encode()
        assert client.post("/gate/check/confirm-promotion", data=body).status_code == 200
    page = client.get("/").get_data()
    assert len(page) < 300_000, len(page)  # its cost is in docs/performance.md
    assert b"<b>9800 more</b> canaries not shown" in page
    status = client.get("/api/v1/status").get_json()
    assert (len(status["gates"]), status["gates_total"]) == (1000, 10_000)  # bounded by default
    assert len(client.get("/api/v1/status?limit=all").get_json()["gates"]) == 10_000  # all, when asked


def test_a_policy_wide_freeze_is_one_line_naming_its_canaries() -> None:
    gates = [gate("test", f"app{i}") for i in range(3)]
    weekend = FreezeWindow("0 6 * * MON", timedelta(hours=12), reason="Cyber Monday")
    snap = Snapshot(
        COMMIT, "gates", {g.canary: g for g in gates}, policies=(Policy("gitgate.yaml", freeze=(weekend,)),)
    )
    page = serve(Source(snap)).test_client().get("/").get_data(as_text=True)
    assert page.count("frozen until") == 1
    assert "<b>3 canaries</b> frozen until 2026-11-23T18:00:00Z" in page
    assert "test/app0, test/app1, test/app2" in page


def test_the_install_script_is_idempotent_when_chromium_is_there() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/install_browser.sh` (as root) first")
    script = Path(__file__).with_name("install_browser.sh")
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
