"""The service's API description (OpenAPI 3.1), served at /openapi.json."""

from __future__ import annotations

from typing import Any

from gitgate.model import Hook
from gitgate.status import STATUS_GATES

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_COMMIT = {
    "X-Gitgate-Commit": {
        "description": "The verified commit the answer comes from ('' before the first).",
        "schema": {"type": "string"},
    }
}


# What wire.py accepts, written so that a generator of valid payloads gets no 400: Kubernetes names
# (schema.valid_ref), and phase/checksum on one line. The patterns say it exactly for ASCII; for
# other text the rule is Python's str.isprintable(), which JSON Schema cannot express.
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"


def _payload(hooks: list[str] | None = None) -> dict[str, Any]:
    """Flagger's payload; with `hooks`, metadata.hook (if sent) must name one of them."""
    hook: dict[str, Any] = {"type": "string", "description": "The hook to answer for (on /gate/check)."}
    if hooks:
        hook["enum"] = hooks
    text = "printable characters on one line"
    return {
        "type": "object",
        "required": ["name", "namespace"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
            "namespace": {"type": "string", "minLength": 1, "maxLength": 63, "pattern": _DNS_LABEL},
            "phase": {"type": ["string", "null"], "pattern": _ONE_LINE, "description": text},
            "checksum": {"type": ["string", "null"], "pattern": _ONE_LINE, "description": text},
            "metadata": {
                "type": ["object", "null"],
                "properties": {"hook": hook},
                "additionalProperties": {"description": "Strings are kept; other values are ignored."},
            },
        },
    }


def _check(summary: str, payload: str = "FlaggerPayload") -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{payload}"}}},
            },
            "responses": {
                "200": {"description": "Open: the body is `Approved`.", "headers": _COMMIT, "content": _TEXT},
                "403": {
                    "description": "Closed: the body is one line saying why and where to approve.",
                    "headers": _COMMIT,
                    "content": _TEXT,
                },
                "400": {"description": "Bad input.", "headers": _COMMIT, "content": _TEXT},
                "413": {"description": "Body over 64 KiB.", "headers": _COMMIT, "content": _TEXT},
            },
        }
    }


def _write(summary: str, payload: str = "FlaggerPayload") -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"admin": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{payload}"}}},
            },
            "responses": {
                "202": {"description": "A request was opened; the body is its URL.", "content": _TEXT},
                "400": {"description": "Bad input.", "content": _TEXT},
                "401": {"description": "No or wrong admin token.", "content": _TEXT},
                "501": {"description": "No forge is configured to open requests with.", "content": _TEXT},
                "502": {"description": "The forge did not open the request; the body says why.", "content": _TEXT},
            },
        }
    }


def _hook(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "Authenticated, but not a push to the served branch (or a ping).",
                    "content": _TEXT,
                },
                "202": {"description": "A push to the served branch: reconciling now.", "content": _TEXT},
                "401": {"description": "Wrong signature or token.", "content": _TEXT},
                "404": {"description": "This webhook is not configured.", "content": _TEXT},
                "413": {"description": "Body over 1 MiB.", "content": _TEXT},
            },
        }
    }


def _get(summary: str, content: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    responses.update(extra or {})
    return {"get": {"summary": summary, "responses": responses}}


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gitgate",
            "version": version,
            "description": "A GitOps-native manual approval gate for Flagger canaries.",
        },
        "paths": {
            "/gate/check": _check(
                "The canary's gate: metadata.hook if given, else any-hook approvals (load tester compatible).",
                "FlaggerPayloadNamingHook",
            ),
            "/gate/check/confirm-rollout": _check("confirm-rollout gate."),
            "/gate/check/confirm-traffic-increase": _check("confirm-traffic-increase gate."),
            "/gate/check/confirm-promotion": _check("confirm-promotion gate."),
            "/rollback/check": _check("Rollback gate: 200 means roll back now."),
            "/gate/approve": {
                "post": {
                    "summary": "Always open (load tester compatible).",
                    "responses": {"200": {"description": "OK", "content": _TEXT}},
                }
            },
            "/gate/halt": {
                "post": {
                    "summary": "Always closed (load tester compatible).",
                    "responses": {"403": {"description": "Forbidden", "content": _TEXT}},
                }
            },
            "/gate/open": _write("Open an approval request for the canary's gate.", "FlaggerPayloadNamingHook"),
            "/gate/close": _write("Open a revocation request for the canary's gate.", "FlaggerPayloadNamingHook"),
            "/rollback/open": _write("Open a rollback approval request."),
            "/rollback/close": _write("Open a rollback revocation request."),
            "/events": {
                "post": {
                    "summary": "Flagger's event webhook: recent events per canary; requests for other revisions "
                    "are closed when a canary reaches Succeeded or Failed.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FlaggerPayload"}}},
                    },
                    "responses": {
                        "202": {"description": "Recorded.", "content": _TEXT},
                        "400": {"description": "Bad input.", "content": _TEXT},
                        "413": {"description": "Body over 64 KiB.", "content": _TEXT},
                    },
                }
            },
            "/hooks/local": {
                "post": {
                    "summary": "The local forge's notification after `gitgate approve`: reconcile now.",
                    "responses": {"202": {"description": "Reconciling.", "content": _TEXT}},
                }
            },
            "/hooks/github": _hook("GitHub push webhook (X-Hub-Signature-256): reconcile now."),
            "/hooks/gitlab": _hook("GitLab push webhook (X-Gitlab-Token): reconcile now."),
            "/healthz": _get("The process is alive.", _TEXT),
            "/readyz": _get(
                "A verified commit is served.", _TEXT, {"503": {"description": "Not ready yet.", "content": _TEXT}}
            ),
            "/metrics": _get("Prometheus metrics.", _TEXT),
            "/api/v1/status": {
                "get": {
                    **_get(
                        "Repo, verified commit, refused commits, gates and answers. At most `limit` gates "
                        "(those that matter first: asked, frozen, with requests); `gates_total` counts all.",
                        {"application/json": {"schema": {"type": "object"}}},
                        {"400": {"description": "A bad `limit`.", "content": _TEXT}},
                    )["get"],
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": f"How many gates to describe (default {STATUS_GATES}), or `all`.",
                            "schema": {"type": "string", "pattern": r"^(all|\d{1,6})$"},
                        }
                    ],
                }
            },
            "/openapi.json": _get("This document.", {"application/json": {"schema": {"type": "object"}}}),
            "/": _get("A status page for people.", {"text/html": {"schema": {"type": "string"}}}),
        },
        "components": {
            "schemas": {
                "FlaggerPayload": _payload(),
                "FlaggerPayloadNamingHook": _payload([h.value for h in Hook]),
            },
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
    }
