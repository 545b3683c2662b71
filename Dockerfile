# syntax=docker/dockerfile:1
# gitgate: GitOps-native manual approval gate for Flagger canaries.
#   docker build -t gitgate .
#   docker run --rm -p 8080:8080 gitgate            # the embedded default repo, ready at once
# Every `gitgate serve` flag also reads GITGATE_<FLAG> (e.g. GITGATE_REPO, GITGATE_TRUST_SSH).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: turn the source into a wheel; nothing from here but the wheel reaches the image ---
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitgate ./gitgate
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- final: python + git + gnupg + openssh-client, gitgate installed from the wheel ---
FROM ${PYTHON_IMAGE}
# DL3008 (pin apt versions) ignored: the packages come from the pinned base image's Debian release,
# whose security updates we want on every rebuild; exact versions would break the build at each one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git gnupg openssh-client \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

# A fixed non-root UID/GID (distroless' "nonroot"), so runAsUser and volume ownership are predictable.
RUN groupadd --system --gid 65532 gitgate \
 && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/gitgate --shell /usr/sbin/nologin gitgate \
 && mkdir -p /var/lib/gitgate \
 && chown 65532:65532 /var/lib/gitgate

# The state dir: gitgate's clone, last verified commit, private keyring and (embedded default) keys.
# WORKDIR is the same writable dir, so the embedded default ./approvals is created there.
ENV HOME=/var/lib/gitgate \
    GITGATE_STATE_DIR=/var/lib/gitgate \
    GITGATE_LISTEN=0.0.0.0:8080
WORKDIR /var/lib/gitgate
USER 65532:65532

EXPOSE 8080
# No curl in the image: ask /healthz with python. Kubernetes ignores HEALTHCHECK (see deploy/ probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["gitgate"]
CMD ["serve"]
