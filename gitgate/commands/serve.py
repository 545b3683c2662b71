"""`gitgate serve`: answer Flagger's gate webhooks from the latest verified commit."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from gitgate import logs
from gitgate.commands.init import init_repo
from gitgate.errors import UsageError
from gitgate.metrics import Metrics
from gitgate.requester import Requester
from gitgate.service import (
    DEFAULT_REPO,
    build_reconciler,
    make_forge,
    repo_settings,
    review_check,
    review_settings,
    verify_mode,
)
from gitgate.settings import listen_address, seconds

log = logging.getLogger("gitgate")
# Measured (bench/servers.py; docs/performance.md, "Choosing the server"): on 2 cores waitress
# spent the least CPU per check of waitress, cheroot and gunicorn (1 gthread worker), and alone kept
# answering while 32 clients stalled mid-upload. 4, 8 and 16 threads serve steady checks alike (one
# core of Python under the GIL); with 4 clients reading /api/v1/status, 4 threads starved checks
# (11/s) where 8 kept 52/s and 16 did no better.
THREADS = 8
# On SIGTERM the service stops answering at once and waits this long for a reconcile in progress to
# finish (a first build, say, so that the next start finds its parse store), well inside
# Kubernetes' default grace period of 30 s. Every write is atomic: cut short, nothing is torn,
# and the next start does the work again.
SHUTDOWN_WAIT = 15.0


def run(args: argparse.Namespace) -> int:
    logs.setup(args.log_format)
    # Every flag is checked before anything is created on disk.
    host, port = listen_address(args.listen)
    verify_mode(args.verify)
    rs = repo_settings(args)
    interval = seconds(args.interval or ("1s" if rs.is_local else "30s"), "--interval")
    required, approvers = review_settings(args)
    if args.request_via == "dispatch" and args.forge not in ("github", "gitlab"):
        raise UsageError("--request-via dispatch needs --forge github or gitlab")
    request_on_deny = bool(args.forge) if args.request_on_deny is None else bool(args.request_on_deny)
    if request_on_deny and not args.forge:
        raise UsageError("--request-on-deny needs --forge: requests are opened on a forge")
    if args.repo == DEFAULT_REPO and not Path(DEFAULT_REPO).exists():
        log.info("no %s: creating the embedded default approvals repo (gitgate init)", DEFAULT_REPO)
        init_repo(Path(DEFAULT_REPO), rs.state)
    rs.state.lock()
    forge = make_forge(args, rs, user="gitgate") if args.forge else None
    requester = None
    if forge is not None:
        requester = Requester(forge=forge, gates_path=rs.path, via=args.request_via)
        requester.start()
    review = review_check(forge, required, approvers) if forge is not None and required else None
    metrics = Metrics()
    reconciler = build_reconciler(args, rs, metrics, review=review)
    reconciler.resume()
    stop = threading.Event()
    worker = threading.Thread(target=reconciler.run, args=(stop, interval), name="reconciler", daemon=True)
    worker.start()
    # The web stack (flask, waitress: about 0.2 s of imports) loads while the first fetch runs.
    import waitress  # noqa: PLC0415

    from gitgate.server import create_app  # noqa: PLC0415

    app = create_app(
        source=reconciler,
        metrics=metrics,
        admin_token=args.admin_token or None,
        requester=requester,
        request_on_deny=request_on_deny,
        branch=rs.branch,
        github_webhook_secret=args.github_webhook_secret or None,
        gitlab_webhook_token=args.gitlab_webhook_token or None,
    )
    log.info(
        "gitgate serving %s branch %s (%s) on http://%s:%d, %s",
        rs.repo,
        rs.branch,
        rs.path,
        host,
        port,
        reconciler.trust.describe(),
    )

    def terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()
        reconciler.trigger()
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminate)
    try:
        waitress.serve(
            app,
            host=host,
            port=port,
            threads=THREADS,
            ident="gitgate",
            max_request_body_size=1 << 20,
            channel_timeout=30,
            _quiet=True,
        )
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        reconciler.trigger()
        if requester is not None:
            requester.stop()
        worker.join(SHUTDOWN_WAIT)
        if worker.is_alive():
            log.warning("a reconcile was still running after %g s; stopping without it", SHUTDOWN_WAIT)
        rs.state.unlock()
    log.info("gitgate stopped")
    return 0
