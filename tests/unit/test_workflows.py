"""The CI workflows (.github/workflows) and their local actions: the properties the README
promises (pinned actions, secrets only through env and never echoed, the deploy order and its
gates, concurrency, the required policy job, one comment, one drift issue), and that the lint
tools/test runs (actionlint with shellcheck) fails on a broken workflow."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import actionlint, ci_github, pr_preview
from tools.common import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
FILES = sorted([*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")])


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as true
        data["on"] = data.pop(True)
    return data


def wf(name: str) -> dict[str, Any]:
    return load(WORKFLOWS / name)


def steps_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in data:
        return data["runs"]["steps"]
    return [s for job in data["jobs"].values() for s in job.get("steps", [])]


def runs(path: Path) -> list[str]:
    return [s["run"] for s in steps_of(load(path)) if "run" in s]


def test_the_workflows_and_actions_exist():
    assert {p.name for p in WORKFLOWS.glob("*.yml")} == {"pull-request.yml", "deploy.yml", "stack-up.yml", "drift.yml"}
    assert {p.parent.name for p in ACTIONS.glob("*/action.yml")} == {"setup-engine", "stack-secrets"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_remote_action_is_pinned_by_full_commit_sha(path):
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", path.read_text(), re.M)
    for ref, comment in uses:
        if ref.startswith("./"):
            assert (ROOT / ref).exists(), ref
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned by a full commit SHA"
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), f"{ref}: say which release the SHA is ({comment!r})"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_take_values_from_env_never_from_expressions_and_never_trace(path):
    for script in runs(path):
        assert "${{" not in script, f"an expression inside a run script (injection, or a secret in the script text): {script[:80]}"
        assert not re.search(r"set -\w*x|set -o xtrace|bash -x", script), script[:80]
    # secrets appear only as values of env: or with: entries
    for line in path.read_text().splitlines():
        if "secrets." in line or "secrets[" in line:
            assert re.match(r"^\s+[\w-]+: \$\{\{ secrets(\.\w+|\[format\('\w+_\{0\}', (inputs|matrix)\.stack\)\]) \}\}$", line), line


def test_composite_action_scripts_pass_shellcheck(tmp_path):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (python3 -m tools.setup installs it)")
    files = []
    for action in sorted(ACTIONS.glob("*/action.yml")):
        for i, step in enumerate(load(action)["runs"]["steps"]):
            if "run" in step:
                assert step["shell"] == "bash"
                f = tmp_path / f"{action.parent.name}-{i}.sh"
                f.write_text("#!/usr/bin/env bash\n" + step["run"])
                files.append(str(f))
    assert len(files) >= 4
    proc = subprocess.run([shellcheck, *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_pull_requests_get_a_policy_gate_without_secrets_and_one_preview_comment():
    data = wf("pull-request.yml")
    assert data["on"] == {"pull_request": {"branches": ["main"]}}  # no path filter: the required status always reports
    policy = data["jobs"]["policy"]
    assert policy["name"] == "policy" and "environment" not in policy
    text = yaml.safe_dump(policy)
    assert "${{ secrets" not in text and "tools.pr_preview --throwaway-secrets --stacks dev prod" in text and 'exit "$rc"' in text
    preview = data["jobs"]["preview"]
    assert preview["environment"] == "preview" and preview["needs"] == "stacks"
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "head.repo.full_name == github.repository" in preview["if"]
    scripts = "\n".join(s.get("run", "") for s in preview["steps"])
    assert "python3 -m tools.pr_preview --stacks" in scripts and "--full-out preview-report.md" in scripts
    assert "python3 -m tools.ci_github comment --pr" in scripts
    assert any(s.get("with", {}).get("name") == "preview-report" for s in preview["steps"])
    assert "tools.affected_stacks --base" in yaml.safe_dump(data["jobs"]["stacks"])


def test_the_comment_marker_is_the_one_the_report_writes():
    assert ci_github.PREVIEW_MARKER == pr_preview.MARKER


def test_deploys_go_dev_then_prod_behind_environments_on_self_hosted_runners_one_at_a_time():
    deploy = wf("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"]}
    assert deploy["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    dev, prod = deploy["jobs"]["dev"], deploy["jobs"]["prod"]
    assert dev["uses"] == prod["uses"] == "./.github/workflows/stack-up.yml"
    assert (dev["with"], prod["with"]) == ({"stack": "dev"}, {"stack": "prod"})
    assert "dev" in prod["needs"] and "needs.dev.result == 'success'" in prod["if"] and "failure" not in prod["if"]
    up = wf("stack-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-stack-${{ inputs.stack }}", "cancel-in-progress": False}
    assert up["runs-on"] == ["self-hosted", "linux", "vm-platform-${{ inputs.stack }}"]
    scripts = "\n".join(s.get("run", "") for s in up["steps"])
    assert 'tools/pulumi up --yes --stack "$STACK"' in scripts and '--policy-pack-config "policy/config/$STACK.json"' in scripts


def test_drift_runs_nightly_per_stack_and_keeps_one_issue():
    drift = wf("drift.yml")
    assert drift["on"]["schedule"] and "workflow_dispatch" in drift["on"]
    check = drift["jobs"]["check"]
    assert check["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert check["runs-on"] == ["self-hosted", "linux", "vm-platform-${{ matrix.stack }}"]
    scripts = "\n".join(s.get("run", "") for s in check["steps"])
    assert 'python3 -m tools.drift --stack "$STACK"' in scripts
    issue = drift["jobs"]["issue"]
    assert issue["permissions"]["issues"] == "write" and issue["needs"] == "check"
    assert "python3 -m tools.ci_github drift-issue --reports drift --stacks dev prod" in "\n".join(s.get("run", "") for s in issue["steps"])


def test_setup_engine_takes_the_official_cli_and_plugins_at_the_pinned_versions():
    steps = load(ACTIONS / "setup-engine" / "action.yml")["runs"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses.index("pulumi/actions") < next(i for i, s in enumerate(steps) if "pulumi plugin install" in s.get("run", ""))
    assert steps[uses.index("pulumi/actions")]["with"] == {"pulumi-version": "${{ steps.pins.outputs.cli }}"}
    script = next(s["run"] for s in steps if "pulumi plugin install" in s.get("run", ""))
    assert 'pulumi plugin install resource kubernetes "$KUBERNETES_VERSION"' in script and 'resource command "$COMMAND_VERSION"' in script
    assert steps[-1]["run"] == "python3 -m tools.engine"


def _git_repo_with(tmp_path: Path, workflow: str) -> Path:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(workflow)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = actionlint.ensure()
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (python3 -m tools.setup installs it)"
    return subprocess.run([str(binary), "-no-color", f"-shellcheck={shellcheck}", "-pyflakes="], cwd=cwd, capture_output=True, text=True)


def test_actionlint_passes_the_workflows():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_with_shellcheck_fails_a_broken_workflow(tmp_path):
    repo = _git_repo_with(
        tmp_path, "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $UNQUOTED\n      - uses: actions/checkout\n"
    )
    proc = _lint(repo)
    assert proc.returncode == 1
    assert "SC2086" in proc.stdout  # shellcheck ran on the run: script
    assert 'specifying action "actions/checkout" in invalid format' in proc.stdout


@pytest.mark.parametrize(("exit_code", "state"), [(0, "clean"), (1, "drifted"), (3, "error")])
def test_the_drift_step_records_each_outcome_under_the_runners_bash_e(tmp_path, exit_code, state):
    """Run the drift job's script as the runner does (`bash -e`), with a stand-in python3."""
    step = next(s for s in wf("drift.yml")["jobs"]["check"]["steps"] if s.get("id") == "drift")
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "report of $*"\nexit {exit_code}\n')
    fake.chmod(0o755)
    (tmp_path / "script.sh").write_text(step["run"])
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "STACK": "dev", "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    proc = subprocess.run(["bash", "-e", str(tmp_path / "script.sh")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "drift" / "drift-dev.state").read_text() == f"{state}\n"
    assert (tmp_path / "out").read_text() == f"state={state}\n"
    assert (tmp_path / "drift" / "drift-dev.md").read_text() == "report of -m tools.drift --stack dev\n"
