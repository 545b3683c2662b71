"""`gitgate lint [PATH...]` and `gitgate schema`, run through gitgate.cli.main(argv) on real files.

SPEC §1: "`gitgate schema` prints the JSON Schema (usable by editors through yaml-language-server);
`gitgate lint` checks a tree or files." §5: exit 0 success, 1 a failure, 2 bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from gitgate.cli import main

GATE = """\
apiVersion: gitgate/v1
kind: Gate
metadata:
  name: podinfo
  namespace: test
spec:
  default: closed
  approvals:
    - hook: confirm-promotion
      checksum: 85d557f47b
      expires: "2026-11-23T12:00:00Z"
  freeze:
    - start: "0 18 * * FRI"
      duration: 63h
      timezone: Europe/Berlin
      reason: No deploys over the weekend
"""
POLICY = """\
apiVersion: gitgate/v1
kind: Policy
spec:
  default: closed
  freeze:
    - start: "0 0 24 12 *"
      duration: 3d
"""
# Problems on lines 10 and 7, in that order of discovery (the checksum is looked at first).
BROKEN_GATE = """\
apiVersion: gitgate/v1
kind: Gate
metadata:
  name: frontend
  namespace: prod
spec:
  default: shut
  approvals:
    - hook: confirm-rollout
      checksum: 5578456
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An approvals repo checkout: a policy at the root, two valid gates."""
    root = tmp_path / "approvals"
    write(root, "gitgate.yaml", POLICY)
    write(root, "gates/test/podinfo.yaml", GATE)
    write(root, "gates/prod/frontend.yaml", GATE.replace("podinfo", "frontend").replace("test", "prod"))
    return root


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.strip()


def test_a_valid_repo_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(capsys, str(repo)) == (0, [], "3 files checked, no problems")


def test_the_current_folder_is_the_default(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    assert lint(capsys) == (0, [], "3 files checked, no problems")
    write(repo, "gates/prod/frontend.yaml", BROKEN_GATE)
    assert lint(capsys) == (
        1,
        [
            "gates/prod/frontend.yaml:7: spec.default: must be open or closed, not 'shut'",
            'gates/prod/frontend.yaml:10: spec.approvals[0].checksum: must be a string, not a number; quote it: checksum: "5578456"',
        ],
        "3 files checked, 2 problem(s)",
    )


def test_problems_are_listed_by_file_then_line_with_the_root_in_front(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "gates/prod/frontend.yaml", BROKEN_GATE.replace("frontend", "web"))
    write(repo, "gitgate.yaml", POLICY.replace("default: closed", "default: closed\n  approvals: []"))
    code, out, err = lint(capsys, str(repo))
    assert code == 1
    assert out == [
        f"{repo}/gates/prod/frontend.yaml:4: metadata.name: is 'web' but the file name says 'frontend'",
        f"{repo}/gates/prod/frontend.yaml:7: spec.default: must be open or closed, not 'shut'",
        f'{repo}/gates/prod/frontend.yaml:10: spec.approvals[0].checksum: must be a string, not a number; quote it: checksum: "5578456"',
        f"{repo}/gitgate.yaml:5: spec.approvals: unknown key; allowed here: default, freeze",
    ]
    assert err == "3 files checked, 4 problem(s)"


def test_a_stray_file_in_the_gates_folder_is_a_problem(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The reconciler refuses a commit with any file under gates/ that is not a gate file; so does lint.
    write(repo, "gates/README.md", "# our gates\n")
    write(repo, "gates/test/podinfo.yml", GATE)
    write(repo, "gates/canary.yaml", GATE)
    code, out, err = lint(capsys, str(repo))
    assert code == 1
    why = "not a gate file path; gate files live at gates/<namespace>/<name>.yaml"
    assert out == [
        f"{repo}/gates/README.md: {why}",
        f"{repo}/gates/canary.yaml: {why}",
        f"{repo}/gates/test/podinfo.yml: {why}",
    ]
    assert err == "6 files checked, 3 problem(s)"


def test_bad_folder_and_file_names(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo, "gates/Prod/web.yaml", GATE)
    write(repo, "gates/test/Web_App.yaml", GATE)
    code, out, _ = lint(capsys, str(repo))
    assert code == 1
    assert out == [
        f"{repo}/gates/Prod/web.yaml: folder 'Prod' is not a Kubernetes namespace name",
        f"{repo}/gates/test/Web_App.yaml: 'Web_App' is not a Kubernetes object name",
    ]


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_symlink_in_the_gates_folder_is_a_problem(
    repo: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    if target == "file":
        (repo / "gates/test/alias.yaml").symlink_to(repo / "gates/test/podinfo.yaml")
        link = "gates/test/alias.yaml"
    else:
        (repo / "gates/staging").symlink_to(repo / "gates/test", target_is_directory=True)
        link = "gates/staging"
    code, out, _ = lint(capsys, str(repo))
    assert code == 1
    assert out == [f"{repo}/{link}: is a symbolic link; only plain gate files are allowed here"]


def test_single_files(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = repo / "gates/test/podinfo.yaml"
    policy = repo / "gitgate.yaml"
    assert lint(capsys, str(gate), str(policy)) == (0, [], "2 files checked, no problems")
    broken = write(repo, "gates/prod/frontend.yaml", BROKEN_GATE)
    code, out, err = lint(capsys, str(gate), str(broken))
    assert code == 1
    assert out == [
        f"{broken}:7: spec.default: must be open or closed, not 'shut'",
        f'{broken}:10: spec.approvals[0].checksum: must be a string, not a number; quote it: checksum: "5578456"',
    ]
    assert err == "2 files checked, 2 problem(s)"


def test_a_single_file_named_relative_to_the_current_folder(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cd gates/test && gitgate lint podinfo.yaml`: the folder is still the namespace.
    monkeypatch.chdir(repo / "gates/test")
    assert lint(capsys, "podinfo.yaml") == (0, [], "1 file checked, no problems")
    write(repo, "gates/test/other.yaml", GATE)
    assert lint(capsys, "other.yaml") == (
        1,
        ["other.yaml:4: metadata.name: is 'podinfo' but the file name says 'other'"],
        "1 file checked, 1 problem(s)",
    )


def test_a_single_file_with_a_bad_name(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yml = write(repo, "gates/test/podinfo.yml", GATE)
    assert lint(capsys, str(yml)) == (
        1,
        [f"{yml}: not a gate file path; gate files live at <namespace>/<name>.yaml"],
        "1 file checked, 1 problem(s)",
    )


def test_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert lint(capsys, str(missing)) == (1, [f"{missing}: no such file or folder"], "0 files checked, 1 problem(s)")


def test_a_file_that_is_not_yaml(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "gates/test/podinfo.yaml").write_bytes(b"apiVersion: gitgate/v1\nkind: \xff\n")
    code, out, _ = lint(capsys, str(repo))
    assert code == 1
    assert out == [f"{repo}/gates/test/podinfo.yaml: not UTF-8 text (byte 29)"]


def test_path_flag_for_a_cluster_folder_reads_both_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fleet"
    write(root, "clusters/prod/gates/test/podinfo.yaml", GATE)
    write(root, "clusters/prod/gitgate.yaml", POLICY)
    write(root, "gitgate.yaml", POLICY)
    write(root, "clusters/staging/gates/test/podinfo.yaml", "not: a gate\n")  # another cluster: not read
    write(root, "gates/test/podinfo.yaml", "also: not read\n")
    args = ("--path", "clusters/prod/gates", str(root))
    assert lint(capsys, *args) == (0, [], "3 files checked, no problems")
    assert lint(capsys, "--path", "clusters/prod/gates/", str(root)) == (0, [], "3 files checked, no problems")

    write(root, "clusters/prod/gitgate.yaml", POLICY.replace("3d", "3 days"))
    write(root, "gitgate.yaml", POLICY.replace("kind: Policy", "kind: Gate"))
    code, out, err = lint(capsys, *args)
    assert code == 1
    assert out == [
        f"{root}/clusters/prod/gitgate.yaml:7: spec.freeze[0].duration: '3 days' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d",
        f"{root}/gitgate.yaml:2: kind: must be Policy in this file, not 'Gate'",
    ]
    assert err == "3 files checked, 2 problem(s)"


def test_path_flag_with_only_the_root_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fleet"
    write(root, "clusters/prod/gates/test/podinfo.yaml", GATE)
    write(root, "gitgate.yaml", POLICY.replace("closed", "ajar"))
    code, out, err = lint(capsys, "--path", "clusters/prod/gates", str(root))
    assert code == 1
    assert out == [f"{root}/gitgate.yaml:4: spec.default: must be open or closed, not 'ajar'"]
    assert err == "2 files checked, 1 problem(s)"


def test_a_gates_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "gates", "not a folder\n")
    assert lint(capsys, str(tmp_path)) == (
        1,
        [f"{tmp_path}/gates: is not a folder of gate files"],
        "0 files checked, 1 problem(s)",
    )


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lint", "--no-such-flag"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


# --- gitgate schema ------------------------------------------------------------------------------


def test_schema_prints_a_2020_12_schema_that_validates_real_files(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    schema = json.loads(out)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    gate = yaml.safe_load((repo / "gates/test/podinfo.yaml").read_text())
    policy = yaml.safe_load((repo / "gitgate.yaml").read_text())
    assert list(validator.iter_errors(gate)) == []
    assert list(validator.iter_errors(policy)) == []
    assert not validator.is_valid(yaml.safe_load(BROKEN_GATE))
    gate["spec"]["approvals"][0]["bogus"] = 1
    assert not validator.is_valid(gate)
    # A file `gitgate lint` passes is one the schema passes.
    assert lint(capsys, str(repo)) == (0, [], "3 files checked, no problems")


def test_a_folder_with_nothing_to_lint_fails_so_a_wrong_path_is_noticed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clusters" / "prod" / "gates" / "test").mkdir(parents=True)
    assert main(["lint", str(tmp_path)]) == 1
    assert "no gates/ folder and no gitgate.yaml; is --path right?" in capsys.readouterr().out


def test_names_kubernetes_would_refuse_are_refused(tmp_path: Path) -> None:
    from gitgate.schema import canary_for_path

    for bad in ("a..b", ".a", "a.", "a.-b", "A"):
        canary, why = canary_for_path(f"gates/test/{bad}.yaml", "gates")
        assert canary is None, bad
        assert "not a Kubernetes object name" in why
    assert canary_for_path("gates/test/podinfo.v2.yaml", "gates")[0] is not None
