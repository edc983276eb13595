"""The PR preview report: per stack, what changes and every policy result, in Markdown."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.automation import ROOT

pytestmark = pytest.mark.engine


def test_pr_preview_reports_changes_and_policy_results(tmp_path):
    out = tmp_path / "report.md"
    r = subprocess.run(
        [sys.executable, "-m", "tools.pr_preview", "--throwaway-secrets", "--stacks", "dev", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    report = out.read_text()
    assert "## `dev`: ✅ ok" in report
    assert "| `eureka-app-statefulset` | create |" in report
    assert "**Policy results:**" in report and "no violations (vm-platform-policies)" in report
    assert "PRIVATE KEY" not in report
