"""The PR comment (tools/pr_preview.py) rendered from synthetic previews: what the summary says,
and that cutting to the limit keeps every summary whole and says what it cut."""

from __future__ import annotations

import re

import pytest

from tools.automation import PreviewResult
from tools.pr_preview import (
    GITHUB_COMMENT_LIMIT,
    MARKER,
    StackReport,
    SummariesTooLong,
    compose,
    restarts,
    share,
    summaries_of,
    summary,
    table_rows,
)

RESTART = "VMP_SCRIPT=440fc71a124d UNIT={unit} HEALTH=true TIMEOUT=120 /usr/local/lib/vm-platform/restart-service.sh"
CMD = "command:remote:Command"


def step(name: str, op: str, *, type: str = CMD, create: str = "", diffs: list[str] | None = None, detailed: list[str] | None = None) -> dict:
    urn = f"urn:pulumi:dev::vm-platform::{type}::{name}"
    return {"op": op, "type": type, "name": name, "diffs": diffs or [], "detailed": detailed or [], "urn": urn, "create": create}


def scripts(host: str) -> dict:
    return step(f"{host}-scripts", "same", type="vm-platform:host:HostScripts")


def preview(steps: list[dict], policy: list[dict] | None = None, stdout: str = "", error: str = "") -> PreviewResult:
    return PreviewResult(steps=steps, policy=policy or [], stdout=stdout, error=error)


def violation(policy: str, level: str, message: str, resource: str = "") -> dict:
    urn = f"urn:pulumi:dev::vm-platform::{CMD}::{resource}" if resource else ""
    return {"policy": policy, "level": level, "message": message, "urn": urn, "pack": "vm-platform-policies"}


def replaced(name: str, **kw) -> list[dict]:
    """A replacement as the engine reports it: three steps for one resource."""
    return [step(name, "create-replacement", **kw), step(name, "replace", **kw), step(name, "delete-replaced", **kw)]


# ---------------------------------------------------------------------------------------------
# Restarts


def test_restarts_name_each_unit_on_its_host_by_the_longest_host_prefix():
    res = preview([
        scripts("node-1"), scripts("node-10"), scripts("cp"),
        *replaced("node-10-kubelet-restart", create=RESTART.format(unit="kubelet")),
        step("node-1-kubelet-restart", "create", create=RESTART.format(unit="kubelet")),
        step("cp-registry-restart", "update", create=RESTART.format(unit="vm-platform-registry")),
        step("node-1-kube-proxy-restart", "same", create=RESTART.format(unit="kube-proxy")),
        step("node-1-kubelet-config", "update", create="VMP_SCRIPT=1 DEST=/etc/x /usr/local/lib/vm-platform/install-file.sh"),
    ])  # fmt: skip
    assert restarts(res) == {
        "node-10": [("kubelet", "restart")],
        "node-1": [("kubelet", "first start")],
        "cp": [("vm-platform-registry", "restart")],
    }


def test_a_deleted_restart_step_restarts_nothing():
    res = preview([scripts("node-1"), step("node-1-kubelet-restart", "delete", create="")])
    assert restarts(res) == {}
    assert "**Services restarting:** none" in summary("dev", res)


# ---------------------------------------------------------------------------------------------
# The summary


def test_summary_counts_a_replacement_once_and_flags_destructive_operations():
    res = preview([
        scripts("node-1"),
        *replaced("node-1-kubelet-restart", create=RESTART.format(unit="kubelet")),
        step("eureka-statefulset", "update", type="kubernetes:apps/v1:StatefulSet", detailed=["spec.replicas"]),
        step("old-namespace", "delete", type="kubernetes:core/v1:Namespace"),
        step("new-service", "create", type="kubernetes:core/v1:Service"),
        step("node-1-hosts-file", "same"),
    ])  # fmt: skip
    text = summary("dev", res)
    assert "**Changes:** +1 create · ~1 update · ±1 replace · -1 delete (2 unchanged)" in text
    assert "**⚠️ Destructive:** 2: `node-1-kubelet-restart` (replace), `old-namespace` (delete)" in text
    assert "| `node-1` | kubelet (restart) |" in text
    rows = table_rows(res)
    assert "| `eureka-statefulset` | update | `spec.replicas` |" in rows
    assert "| `old-namespace` | ⚠️ delete | - |" in rows
    assert "| `node-1-kubelet-restart` | ⚠️ replace | - |" in rows
    assert not any("hosts-file" in r for r in rows)


def test_summary_lists_every_policy_result_with_its_level_mandatory_first():
    res = preview(
        [step("eureka-statefulset", "update")],
        policy=[
            violation("pdb-min-available", "advisory", "minAvailable equals replicas", "eureka-pdb"),
            violation("no-host-port", "mandatory", "hostPort 8761 with 3 replicas | 2 workers", "eureka-statefulset"),
            violation("stack-registry", "mandatory", "registry\nplain http"),
        ],
    )
    text = summary("dev", res)
    assert text.startswith("## `dev`: ❌ 2 mandatory policy violations")
    lines = [line for line in text.splitlines() if line.startswith("| ") and "policy" not in line]
    assert lines == [
        "| ❌ mandatory | `no-host-port` | `eureka-statefulset` | hostPort 8761 with 3 replicas \\| 2 workers |",
        "| ❌ mandatory | `stack-registry` | (stack) | registry plain http |",
        "| advisory | `pdb-min-available` | `eureka-pdb` | minAvailable equals replicas |",
    ]


@pytest.mark.parametrize(
    ("policy", "error", "head"),
    [
        ([], "", "✅ ok"),
        ([violation("p", "advisory", "m")], "", "⚠️ ok, with advisory policy results"),
        ([violation("p", "mandatory", "m")], "exit status 1", "❌ 1 mandatory policy violation"),
        ([], "error: program failed", "❌ preview failed"),
    ],
)
def test_result_line(policy, error, head):
    assert summary("prod", preview([], policy=policy, error=error)).splitlines()[0] == f"## `prod`: {head}"


def test_a_failed_preview_shows_the_error_tail_in_the_summary():
    error = "\n".join(f"line {i}" for i in range(100)) + "\nerror: vm-platform:workers[0].address: expected an IPv4 address"
    text = summary("dev", preview([], error=error))
    assert "error: vm-platform:workers[0].address: expected an IPv4 address" in text
    assert "line 99" in text and "line 10\n" not in text


# ---------------------------------------------------------------------------------------------
# The comment and the limit


def big_report(stack: str, rows: int, diff_lines: int) -> StackReport:
    steps = [scripts(f"{stack}-cp")]
    steps += [step(f"{stack}-cp-file-{i}", "update", detailed=["stdin"]) for i in range(rows)]
    steps += [step(f"{stack}-cp-etcd-restart", "update", create=RESTART.format(unit="etcd"))]
    diff = "\n".join(f"    ~ {stack} resource {i}: stdin: {'x' * 60}" for i in range(diff_lines))
    return StackReport.of(stack, preview(steps, policy=[violation("image-pinned", "advisory", f"{stack}: latest tag")], stdout=diff))


def balanced(comment: str) -> None:
    assert comment.count("<details>") == comment.count("</details>")
    assert comment.count("```") % 2 == 0


def test_a_small_report_is_posted_whole():
    reports = [big_report("dev", 3, 10), big_report("prod", 3, 10)]
    comment = compose(reports, commit="0123456789abcdef0123")
    assert comment == compose(reports, max_chars=None, commit="0123456789abcdef0123")
    assert comment.splitlines()[0] == MARKER
    assert "commit `0123456789ab` · stacks: `dev`, `prod`" in comment
    assert "✂️" not in comment
    balanced(comment)


def test_an_oversized_report_is_cut_in_the_diffs_and_keeps_every_summary_whole():
    reports = [big_report("dev", 40, 3000), big_report("prod", 60, 3000)]
    full = compose(reports, max_chars=None)
    comment = compose(reports, max_chars=GITHUB_COMMENT_LIMIT, full_report_url="https://example.invalid/run/1")
    assert len(full) > 2 * GITHUB_COMMENT_LIMIT
    assert GITHUB_COMMENT_LIMIT - 2000 < len(comment) <= GITHUB_COMMENT_LIMIT
    assert summaries_of(comment) == summaries_of(full) and set(summaries_of(comment)) == {"dev", "prod"}
    # order: summaries, then tables, then the diffs
    assert comment.index("## `prod`:") < comment.index("## Changed resources") < comment.index("## Full `pulumi preview --diff`")
    # the tables fit, so only the diffs are cut, both of them, fairly, each saying so
    assert "table:" not in comment
    cuts = re.findall(r"_✂️ truncated: diff: (\d+) of 3000 lines shown to fit GitHub's comment limit; full report in \[the run's artifact\]\(https://example.invalid/run/1\)._", comment)  # fmt: skip
    assert len(cuts) == 2 and all(int(n) > 100 for n in cuts) and abs(int(cuts[0]) - int(cuts[1])) < 20
    assert "dev resource 0:" in comment and "dev resource 2999:" not in comment
    balanced(comment)


def test_a_small_stack_keeps_its_whole_diff_beside_a_huge_one():
    reports = [big_report("dev", 5, 50), big_report("prod", 5, 5000)]
    comment = compose(reports, max_chars=GITHUB_COMMENT_LIMIT)
    assert len(comment) <= GITHUB_COMMENT_LIMIT
    assert "dev resource 49:" in comment and "diff: 50 of" not in comment
    assert re.search(r"diff: \d+ of 5000 lines shown", comment)


def test_huge_tables_are_cut_after_the_summaries_and_before_nothing_else_is_left():
    reports = [big_report("dev", 2000, 100), big_report("prod", 2000, 100)]
    comment = compose(reports, max_chars=GITHUB_COMMENT_LIMIT)
    full = compose(reports, max_chars=None)
    assert len(comment) <= GITHUB_COMMENT_LIMIT
    assert summaries_of(comment) == summaries_of(full)
    assert len(re.findall(r"table: \d+ of 2001 rows shown", comment)) == 2
    assert len(re.findall(r"diff: 0 of 100 lines shown", comment)) == 2
    balanced(comment)


@pytest.mark.parametrize("limit", [20_000, 30_000, 65_536])
def test_the_comment_never_exceeds_the_limit(limit):
    reports = [big_report("dev", 300, 2000), big_report("prod", 500, 2000), big_report("local", 10, 10)]
    comment = compose(reports, max_chars=limit)
    assert len(comment) <= limit
    assert set(summaries_of(comment)) == {"dev", "prod", "local"}


def test_summaries_that_do_not_fit_are_refused_not_cut():
    with pytest.raises(SummariesTooLong, match="summaries alone take"):
        compose([big_report("dev", 10, 10000)], max_chars=500)


def test_share_gives_small_parts_all_and_splits_the_rest():
    assert share([10, 1000, 1000], 610) == [10, 300, 300]
    assert share([10, 20], 100) == [10, 20]
    assert share([50, 50], 0) == [0, 0]
    assert sum(share([7, 900, 13, 400], 555)) <= 555


def test_the_summary_repeats_what_the_program_said_once():
    res = preview([])
    res.program_said = [
        "info: Kubernetes upgrade v1.34.3 -> v1.34.4: etcd snapshot on m, then ...",
        "warning: 1 certificate(s) expire within 30 days",
        "info: Kubernetes upgrade v1.34.3 -> v1.34.4: etcd snapshot on m, then ...",
    ]
    text = summary("dev", res)
    assert text.count("Kubernetes upgrade v1.34.3 -> v1.34.4") == 1 and "**The program says:**" in text and "- warning: 1 certificate(s)" in text
    assert "The program says" not in summary("dev", preview([]))
