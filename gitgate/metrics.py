"""Prometheus metrics, on a registry of their own (one per service, so tests can run many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.checks = Counter(
            "gitgate_checks", "Gate checks answered, by hook and answer.", ["hook", "answer"], registry=r
        )
        self.bad_requests = Counter(
            "gitgate_bad_requests", "Requests refused as malformed (4xx).", ["endpoint"], registry=r
        )
        self.check_seconds = Histogram(
            "gitgate_check_duration_seconds",
            "Time to answer a check, parse to response.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=r,
        )
        self.reconciles = Counter("gitgate_reconciles", "Reconcile runs, by result.", ["result"], registry=r)
        self.reconcile_seconds = Histogram(
            "gitgate_reconcile_duration_seconds", "Time of one reconcile, fetch included.", registry=r
        )
        self.refused = Counter("gitgate_refused_commits", "Commits refused, by reason kind.", ["kind"], registry=r)
        self.ready = Gauge("gitgate_ready", "1 once a verified snapshot is served.", registry=r)
        self.verified_commit_time = Gauge(
            "gitgate_verified_commit_timestamp_seconds", "Commit time of the commit answers come from.", registry=r
        )
        self.last_fetch_success = Gauge(
            "gitgate_last_fetch_success_timestamp_seconds",
            "When the approvals repo was last fetched successfully.",
            registry=r,
        )
        self.gates = Gauge("gitgate_gates", "Gate files in the served snapshot.", registry=r)
        self.unverified = Gauge("gitgate_unverified", "1 when running with --verify off.", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
