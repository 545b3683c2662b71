"""The service's API description (OpenAPI 3.1), served at /openapi.json."""

from __future__ import annotations

from typing import Any

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_COMMIT = {
    "X-Gitgate-Commit": {
        "description": "The verified commit the answer comes from ('' before the first).",
        "schema": {"type": "string"},
    }
}


def _payload() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "namespace"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "namespace": {"type": "string", "minLength": 1},
            "phase": {"type": "string"},
            "checksum": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }


def _check(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FlaggerPayload"}}},
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


def _write(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"admin": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FlaggerPayload"}}},
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
                "413": {"description": "Body over 64 KiB.", "content": _TEXT},
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
                "The canary's gate: metadata.hook if given, else any-hook approvals (load tester compatible)."
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
            "/gate/open": _write("Open an approval request for the canary's gate."),
            "/gate/close": _write("Open a revocation request for the canary's gate."),
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
            "/api/v1/status": _get(
                "Repo, verified commit, refused commits, gates and answers.",
                {"application/json": {"schema": {"type": "object"}}},
            ),
            "/openapi.json": _get("This document.", {"application/json": {"schema": {"type": "object"}}}),
            "/": _get("A status page for people.", {"text/html": {"schema": {"type": "string"}}}),
        },
        "components": {
            "schemas": {"FlaggerPayload": _payload()},
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
    }
