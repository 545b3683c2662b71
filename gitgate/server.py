"""The webhook service: `create_app(...)`. Endpoints only; the answer comes from `decide`."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from gitgate import __version__
from gitgate.decide import decide
from gitgate.metrics import CONTENT_TYPE, Metrics
from gitgate.model import CanaryRef, Decision, Hook
from gitgate.openapi import openapi_document
from gitgate.parse_store import StoredGateUnreadable
from gitgate.request import RequestSpec, branch_name
from gitgate.requester import Requester, Wanted
from gitgate.status import (
    PAGE_GATES,
    STATUS_GATES,
    Event,
    EventLog,
    GateSource,
    LastCheck,
    RecentChecks,
    build_status,
    commit_of,
    render_page,
    ts_from_ms,
)
from gitgate.webhooks import github_signature_ok, gitlab_token_ok, pushed_branch
from gitgate.wire import MAX_BODY, BadRequest, check_request, parse_payload

log = logging.getLogger("gitgate.server")
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
WEBHOOK_BODY = 1 << 20


def _text(body: str, status: int, **headers: str) -> Response:
    resp = Response(body + "\n", status=status, mimetype="text/plain")
    for key, value in headers.items():
        resp.headers[key.replace("_", "-")] = value
    return resp


def _check_body(environ: dict[str, Any]) -> bytes:
    """The body of a check, read straight from the WSGI input: the server (waitress) has already
    received it whole, de-chunked, and set CONTENT_LENGTH. Werkzeug's stream wrappers would cost
    as much as the rest of the answer; the 64 KiB limit stays, as a 413."""
    given = environ.get("CONTENT_LENGTH") or ""
    if not given:
        # No length: a chunked body a server passed on as is (werkzeug's dev server does).
        return request.get_data(cache=False) if environ.get("wsgi.input_terminated") else b""
    if not given.isdigit():
        raise BadRequest(f"Content-Length {given[:20]!r} is not a number", 400)
    length = int(given)
    if length > MAX_BODY:
        raise BadRequest(f"body over {MAX_BODY} bytes; Flagger's payload is far smaller", 413)
    data: bytes = environ["wsgi.input"].read(length)
    return data


def _header_safe(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")[:1000]


Answer = tuple[int, str, dict[str, str]]  # status, text, extra headers
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Any]


class _CheckPath:
    """Flagger's checks (a POST with a length) answered ahead of Flask; everything else, and any
    other method on the check paths, goes on to Flask.

    The check is what Flagger polls, per canary and gate, every interval. Flask's request
    context, routing, signals and response object cost more than the answer itself (measured:
    docs/performance.md, "How the cost grows"); here a check costs its own work and waitress's."""

    def __init__(self, app: WSGIApp, routes: dict[str, Callable[[dict[str, Any]], Answer]]) -> None:
        self.app = app
        self.routes = routes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        handler = self.routes.get(environ.get("PATH_INFO", ""))
        if handler is None or environ.get("REQUEST_METHOD") != "POST" or not environ.get("CONTENT_LENGTH"):
            return self.app(environ, start_response)
        try:
            status, text, extra = handler(environ)
        except Exception:  # never a traceback to the caller, never an open gate
            log.exception("answering %s failed; answered 500 (closed)", environ.get("PATH_INFO"))
            status, text, extra = 500, "internal error; the gate stays closed (see gitgate's log)", {}
        body = (text + "\n").encode("utf-8", "backslashreplace")
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        headers += extra.items()
        start_response(
            _STATUS_LINES.get(status) or f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}", headers
        )
        return [body]


_STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 400, 403, 413)}


def create_app(
    *,
    source: GateSource,
    metrics: Metrics,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    admin_token: str | None = None,
    requester: Requester | None = None,
    request_on_deny: bool = False,
    branch: str = "main",
    github_webhook_secret: str | None = None,
    gitlab_webhook_token: str | None = None,
) -> Flask:
    """The service. With a `requester`, denied checks open approval requests in the background
    (`request_on_deny`) and the admin-token write endpoints open requests and revocations."""
    app = Flask("gitgate")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    recent = RecentChecks()
    events = EventLog()
    check_paths: set[str] = set()
    # Looked up once: a labelled child costs a lock and a dict lookup on every check otherwise.
    counted = {(h, o): metrics.checks.labels(h.value, "open" if o else "closed") for h in Hook for o in (True, False)}
    timed = metrics.check_seconds.observe

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        status = e.code or 500
        metrics.bad_requests.labels(request.path if status != 404 else "unknown").inc()
        text = {
            404: f"no such endpoint {request.path}; see /openapi.json",
            405: f"method {request.method} is not accepted on {request.path}",
            413: f"body over {MAX_BODY} bytes; Flagger's payload is far smaller",
        }.get(status, e.description or e.name)
        resp = _text(text, status)
        for key, value in e.get_headers():
            if key == "Allow":  # RFC 9110 §15.5.6: a 405 names the methods that are allowed
                resp.headers[key] = value
        if request.path in check_paths:
            resp.headers["X-Gitgate-Commit"] = commit_of(source.snapshot)
        return resp

    def answer(environ: dict[str, Any], hook: Hook | None, path: str) -> Answer:
        started = time.perf_counter()
        snap = source.snapshot
        try:
            req = check_request(parse_payload(_check_body(environ)), hook)
        except BadRequest as e:
            metrics.bad_requests.labels(path).inc()
            return e.status, str(e), {"X-Gitgate-Commit": commit_of(snap)}
        now = clock()
        spec = None
        url = None
        if requester is not None and req.hook.is_confirm and req.checksum:
            spec = RequestSpec(
                req.canary,
                req.hook,
                req.checksum,
                phase=req.phase,
                message=events.last_message(req.canary),
                waiting_since=now,
            )
            url = requester.url_for(spec)
        try:
            decision: Decision = decide(snap, req, now, request_url=url)
        except StoredGateUnreadable:  # answered 500 (closed); the reconciler reads it from git again
            source.trigger()
            raise
        wanted = request_on_deny and not decision.open and snap is not None and decision.frozen_until is None
        if wanted and spec is not None and requester is not None:
            requester.want(spec)  # never blocks: the forge is called on the requester's thread
        recent.record(req.canary, req.hook, LastCheck(req.checksum, req.phase, decision.open, now))
        counted[req.hook, decision.open].inc()
        timed(time.perf_counter() - started)
        if decision.open:
            return (
                200,
                "Approved",
                {"X-Gitgate-Commit": decision.commit, "X-Gitgate-Reason": _header_safe(decision.reason)},
            )
        return 403, decision.reason, {"X-Gitgate-Commit": decision.commit}

    lean: dict[str, Callable[[dict[str, Any]], Answer]] = {}

    def route(rule: str, hook: Hook | None) -> None:
        check_paths.add(rule)

        def flask_view() -> Response:  # other methods, or a body without a length
            status, text, extra = answer(request.environ, hook, rule)
            resp = _text(text, status)
            resp.headers.update(extra)
            return resp

        lean[rule] = lambda environ: answer(environ, hook, rule)
        app.add_url_rule(rule, endpoint=rule, view_func=flask_view, methods=ANY_METHOD, provide_automatic_options=False)

    route("/gate/check", None)
    route("/gate/check/confirm-rollout", Hook.CONFIRM_ROLLOUT)
    route("/gate/check/confirm-traffic-increase", Hook.CONFIRM_TRAFFIC_INCREASE)
    route("/gate/check/confirm-promotion", Hook.CONFIRM_PROMOTION)
    route("/rollback/check", Hook.ROLLBACK)

    @app.route("/gate/approve", methods=ANY_METHOD, provide_automatic_options=False)
    def approve() -> Response:
        return _text("OK", 200)

    @app.route("/gate/halt", methods=ANY_METHOD, provide_automatic_options=False)
    def halt() -> Response:
        return _text("Forbidden", 403)

    def write(action: str) -> Response:
        given = request.headers.get("Authorization", "")
        if not admin_token:
            return _text(
                "write endpoints are disabled: the service has no --admin-token; "
                "approve by merging a change to the approvals repo",
                401,
                WWW_Authenticate='Bearer realm="gitgate"',
            )
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), admin_token.encode()):
            return _text(
                "missing or wrong bearer token (Authorization: Bearer <--admin-token>)",
                401,
                WWW_Authenticate='Bearer realm="gitgate"',
            )
        try:
            hook = Hook.ROLLBACK if action.startswith("/rollback/") else None
            req = check_request(parse_payload(request.get_data(cache=False)), hook)
        except BadRequest as e:
            return _text(str(e), e.status)
        if requester is None:
            return _text(
                f"{action} cannot open a request: this service has no forge to open approval "
                "requests with (--forge); commit the change to the approvals repo instead",
                501,
            )
        if not req.checksum:
            return _text("'checksum' is required: an approval is bound to a revision (use \"*\" for any)", 400)
        spec = RequestSpec(
            req.canary,
            req.hook,
            req.checksum,
            phase=req.phase,
            message=events.last_message(req.canary),
            waiting_since=clock(),
            revoke=action.endswith("/close"),
        )
        item = requester.open_now(Wanted(spec))
        if item.state == "failed":
            return _text(f"the forge did not open the request: {item.error}", 502)
        return _text(item.url or f"asked the forge's workflow to open {branch_name(spec)}", 202)

    for rule in ("/gate/open", "/gate/close", "/rollback/open", "/rollback/close"):
        app.add_url_rule(
            rule,
            endpoint=rule,
            view_func=lambda rule=rule: write(rule),
            methods=ANY_METHOD,
            provide_automatic_options=False,
        )

    @app.post("/events")
    def flagger_event() -> Response:
        """Flagger's event webhook: kept per canary for the status page; a canary that reached
        Succeeded or Failed has its open requests for other revisions closed."""
        try:
            payload = parse_payload(request.get_data(cache=False))
        except BadRequest as e:
            metrics.bad_requests.labels(request.path).inc()
            return _text(str(e), e.status)
        canary = CanaryRef(payload["namespace"], payload["name"])
        meta = payload.get("metadata", {})
        phase = payload.get("phase")
        events.record(
            canary,
            Event(
                ts_from_ms(meta.get("timestamp"), clock()),
                meta.get("eventType", ""),
                meta.get("eventMessage", ""),
                phase,
                payload.get("checksum"),
            ),
        )
        if requester is not None and phase in ("Succeeded", "Failed"):
            keep = payload.get("checksum")
            requester.finished(canary, keep, phase or "")
        return _text("OK", 202)

    def push_hook(ok: bool, configured: bool, flag: str) -> Response:
        if not configured:
            return _text(f"this webhook is off: start the service with {flag}", 404)
        if not ok:
            metrics.bad_requests.labels(request.path).inc()
            return _text("webhook not authenticated: wrong signature or token", 401)
        pushed = pushed_branch(request.get_data(cache=True))
        if pushed != branch:
            return _text(f"ignored: not a push to {branch}", 200)
        source.trigger()
        return _text(f"reconciling {branch}", 202)

    @app.post("/hooks/local")
    def local_hook() -> Response:
        """`gitgate approve --notify`: reconcile now. It carries no data and changes nothing by
        itself (what is fetched is verified as always), so it needs no secret; triggers coalesce."""
        source.trigger()
        return _text("reconciling", 202)

    @app.post("/hooks/github")
    def github_hook() -> Response:
        request.max_content_length = WEBHOOK_BODY  # push payloads list commits; they outgrow Flagger's
        body = request.get_data(cache=True)
        if (
            request.headers.get("X-GitHub-Event") == "ping"
            and github_webhook_secret
            and github_signature_ok(github_webhook_secret, body, request.headers.get("X-Hub-Signature-256"))
        ):
            return _text("pong", 200)
        ok = bool(github_webhook_secret) and github_signature_ok(
            github_webhook_secret or "", body, request.headers.get("X-Hub-Signature-256")
        )
        return push_hook(ok, bool(github_webhook_secret), "--github-webhook-secret")

    @app.post("/hooks/gitlab")
    def gitlab_hook() -> Response:
        request.max_content_length = WEBHOOK_BODY
        ok = bool(gitlab_webhook_token) and gitlab_token_ok(
            gitlab_webhook_token or "", request.headers.get("X-Gitlab-Token")
        )
        return push_hook(ok, bool(gitlab_webhook_token), "--gitlab-webhook-token")

    @app.get("/healthz")
    def healthz() -> Response:
        return _text("ok", 200)

    @app.get("/readyz")
    def readyz() -> Response:
        snap = source.snapshot
        if snap is None:
            return _text("not ready: no verified commit of the approvals repo yet", 503)
        return _text(f"ready: answering from {snap.commit}", 200)

    @app.get("/metrics")
    def metrics_page() -> Response:
        return Response(metrics.render(), mimetype=CONTENT_TYPE)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(json.dumps(openapi_document(__version__), indent=2), mimetype="application/json")

    def full_status(limit: int | None = None) -> dict[str, Any]:
        out = build_status(source, recent, clock(), limit)
        out["requests"] = requester.status() if requester is not None else []
        out["events"] = events.status()
        return out

    @app.get("/api/v1/status")
    def status() -> Response:
        # Bounded by default: describing 100,000 gates takes seconds of the CPU checks need.
        given = request.args.get("limit", str(STATUS_GATES))
        if given != "all" and not (given.isdigit() and len(given) <= 6):
            return _text(f"limit must be a number of gates or 'all', not {given[:20]!r}", 400)
        limit = None if given == "all" else int(given)
        return Response(json.dumps(full_status(limit), indent=2), mimetype="application/json")

    @app.get("/")
    def page() -> Response:
        return Response(render_page(full_status(PAGE_GATES)), mimetype="text/html")

    app.wsgi_app = _CheckPath(app.wsgi_app, lean)  # type: ignore[method-assign]
    return app
