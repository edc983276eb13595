"""The PR preview comment from real previews of dev and prod: what it reports, and that it fits
GitHub's comment limit with every stack's summary whole (the full report is about 0.5 MB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.automation import ROOT
from tools.pr_preview import GITHUB_COMMENT_LIMIT, MARKER, summaries_of

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> tuple[str, str]:
    d: Path = tmp_path_factory.mktemp("pr-preview")
    outs = ["--out", str(d / "comment.md"), "--full-out", str(d / "full.md")]
    r = subprocess.run(
        [sys.executable, "-m", "tools.pr_preview", "--throwaway-secrets", "--stacks", "dev", "prod", *outs], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return (d / "comment.md").read_text(), (d / "full.md").read_text()


def test_pr_preview_reports_changes_restarts_and_policy_results(reports):
    comment, _ = reports
    assert comment.splitlines()[0] == MARKER
    assert "## `dev`: ✅ ok" in comment and "## `prod`: ✅ ok" in comment
    assert "| `eureka-app-statefulset` | create |" in comment
    assert "| `centos-minion-1` | containerd (first start), flanneld (first start), kube-proxy (first start), kubelet (first start) |" in comment
    assert "| `prod-master` | etcd (first start), kube-apiserver (first start)" in comment
    assert "**Policy results** (`vm-platform-policies`, `policy/config/prod.json`):\n\nno violations" in comment
    assert "PRIVATE KEY" not in comment


def test_the_dev_and_prod_comment_fits_and_keeps_every_summary(reports):
    comment, full = reports
    assert len(full) > 2 * GITHUB_COMMENT_LIMIT  # the real report needs cutting
    assert len(comment) <= GITHUB_COMMENT_LIMIT
    assert summaries_of(comment) == summaries_of(full)
    assert set(summaries_of(comment)) == {"dev", "prod"}
    assert comment.count("_✂️ truncated: diff:") == 2 and "full report in the run's artifact" in comment
    assert "✂️" not in full


def test_a_real_mandatory_violation_heads_the_stacks_summary(project):
    """dev under prod's policy config (plain-http registry, too few replicas): the summary says
    so first and lists each violation with its level; the exit status would be 1."""
    from tests.integration.test_policy_preview import config, preview_with_pack
    from tools.pr_preview import StackReport, compose, failed

    res = preview_with_pack(project, "dev", config("prod"))
    comment = compose([StackReport.of("dev", res)])
    dev = summaries_of(comment)["dev"]
    mandatory = sum(p["level"] == "mandatory" for p in res.policy)
    assert mandatory >= 3 and failed(res)
    assert dev.startswith(f"## `dev`: ❌ {mandatory} mandatory policy violations")
    assert "| ❌ mandatory | `registry-plain-http` |" in dev and "| ❌ mandatory | `min-replicas` |" in dev
    assert dev.count("| ❌ mandatory |") == mandatory
    assert len(comment) <= GITHUB_COMMENT_LIMIT
