"""PR preview: `pulumi preview --diff` of each stack with its policy pack config, as one Markdown
comment for a pull request, safe to post within GitHub's comment limit.

    python3 -m tools.pr_preview [--stacks dev prod] [--out comment.md] [--full-out report.md]
                                [--max-chars 65536] [--commit SHA] [--full-report-url URL]
                                [--throwaway-secrets]

The comment starts with a hidden marker (MARKER) so a workflow finds its own comment and edits it
in place. Its order is what a reviewer reads first: per stack a summary (result; counts of
creates, updates, replaces and deletes; destructive operations named; which services restart on
which host; every policy result with its level), then the changed-resources tables, then the
full `preview --diff` of each stack folded in <details>. Summaries are never cut; when the whole
does not fit in --max-chars, the tables and then the diffs are cut (shared fairly between the
stacks) and each cut says so and where the full report is (--full-out, the run's artifact).

Without --throwaway-secrets it previews the stacks as configured in this checkout (their secrets
must be set and the backend reachable, as on the team's CI runner). With it, the stacks are
previewed from a copy of the project on an empty backend with a throwaway SSH key and registry
password: previews never connect to the hosts, so the policy results are the same and machines
without the real secrets can still produce them (everything shows as a create).
Exit status: 1 when a stack fails to preview or has a mandatory policy violation; 2 when the
summaries alone do not fit in --max-chars.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import ROOT, in_project_venv

if __name__ == "__main__":
    in_project_venv("tools.pr_preview")  # before the harness imports pulumi

from .automation import PreviewResult, Project, new_project, repo_stack_config, throwaway_ssh_key  # noqa: E402

THROWAWAY_REGISTRY_PASSWORD = "throwaway-preview-only"
MARKER = "<!-- vm-platform-preview -->"
GITHUB_COMMENT_LIMIT = 65536
# The summary counts these per resource (a replacement's three steps are one "replace").
COUNTED_OPS = ("create", "update", "replace", "delete")
DESTRUCTIVE_OPS = ("replace", "delete")
RESTART_SCRIPT = "restart-service.sh"
HOST_SCRIPTS_TYPE = "vm-platform:host:HostScripts"
ERROR_TAIL_LINES = 30


class SummariesTooLong(Exception):
    """The summaries alone exceed the limit: nothing may be cut from them."""


def preview_stack(project: Project, stack: str, secrets: dict[str, str]) -> PreviewResult:
    policy_config = ROOT / "policy" / "config" / f"{stack}.json"
    st = project.stack(stack, secrets)
    return project.preview(st, policy_packs=[str(ROOT / "policy")], policy_pack_configs=[str(policy_config)])


# --------------------------------------------------------------------------------------------
# What a preview says


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def restarts(res: PreviewResult) -> dict[str, list[tuple[str, str]]]:
    """host -> [(unit, "restart" | "first start")] for every restart step the preview runs.

    A restart step is a command running restart-service.sh with UNIT=<unit>; its host is the
    longest host name (from the hosts' script bundles, `<host>-scripts`) its name starts with."""
    hosts = sorted({s["name"].removesuffix("-scripts") for s in res.steps if s["type"] == HOST_SCRIPTS_TYPE}, key=len, reverse=True)
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, (op, _) in sorted(res.changed().items()):
        if op not in ("create", "update", "replace"):
            continue
        create = next((s.get("create", "") for s in res.steps if s["name"] == name and s.get("create")), "")
        if not create.endswith(f"/{RESTART_SCRIPT}"):
            continue
        unit = next((w.split("=", 1)[1] for w in shlex.split(create) if w.startswith("UNIT=")), "?")
        host = next((h for h in hosts if name.startswith(f"{h}-")), "?")
        out[host].append((unit, "first start" if op == "create" else "restart"))
    return dict(out)


def result_line(res: PreviewResult) -> str:
    mandatory = sum(p["level"] == "mandatory" for p in res.policy)
    if res.error and not mandatory:
        return "❌ preview failed"
    if mandatory:
        return f"❌ {mandatory} mandatory policy violation{'s' if mandatory != 1 else ''}"
    if res.policy:
        return "⚠️ ok, with advisory policy results"
    return "✅ ok"


def failed(res: PreviewResult) -> bool:
    return bool(res.error) or any(p["level"] == "mandatory" for p in res.policy)


def summary(stack: str, res: PreviewResult) -> str:
    """Never cut: result, counts, destructive operations, restarts, every policy result."""
    changed = res.changed()
    counts = Counter(op for op, _ in changed.values())
    same = sum(1 for s in res.steps if s["op"] == "same")
    parts = [f"+{counts['create']} create", f"~{counts['update']} update", f"±{counts['replace']} replace", f"-{counts['delete']} delete"]
    other = {op: n for op, n in counts.items() if op not in COUNTED_OPS}
    parts += [f"{n} {op}" for op, n in sorted(other.items())]
    lines = [f"## `{stack}`: {result_line(res)}", "", f"**Changes:** {' · '.join(parts)} ({same} unchanged)", ""]
    destructive = [(name, op) for name, (op, _) in sorted(changed.items()) if op in DESTRUCTIVE_OPS]
    if destructive:
        lines += [f"**⚠️ Destructive:** {len(destructive)}: " + ", ".join(f"`{n}` ({op})" for n, op in destructive), ""]
    else:
        lines += ["**Destructive:** none", ""]
    by_host = restarts(res)
    if by_host:
        lines += ["**Services restarting:**", "", "| host | services |", "|---|---|"]
        for host, units in sorted(by_host.items()):
            lines.append(f"| `{host}` | {', '.join(f'{u} ({why})' for u, why in units)} |")
        lines.append("")
    else:
        lines += ["**Services restarting:** none", ""]
    said = list(dict.fromkeys(res.program_said))  # e.g. a Kubernetes upgrade's order, certificates near expiry
    if said:
        lines += ["**The program says:**", "", *(f"- {_cell(d)}" for d in said), ""]
    packs = sorted({p.get("pack") or "vm-platform-policies" for p in res.policy}) or ["vm-platform-policies"]
    lines += [f"**Policy results** ({', '.join(f'`{p}`' for p in packs)}, `policy/config/{stack}.json`):", ""]
    if res.policy:
        lines += ["| level | policy | resource | message |", "|---|---|---|---|"]
        order = {"mandatory": 0, "remediate": 1, "advisory": 2}
        for p in sorted(res.policy, key=lambda p: (order.get(p["level"], 3), p["policy"], p.get("urn") or "")):
            resource = f"`{p['urn'].split('::')[-1]}`" if p.get("urn") else "(stack)"
            icon = "❌ " if p["level"] == "mandatory" else ""
            lines.append(f"| {icon}{p['level']} | `{p['policy']}` | {resource} | {_cell(p['message'])} |")
    else:
        lines.append("no violations")
    lines.append("")
    if res.error:
        tail = res.error.strip().splitlines()[-ERROR_TAIL_LINES:]
        lines += ["**Preview error** (last lines; all of it under the full diff):", "", "```", *tail, "```", ""]
    return "\n".join(lines)


def table_rows(res: PreviewResult) -> list[str]:
    rows = []
    for name, (op, diffs) in sorted(res.changed().items()):
        props = res.detailed(name) or diffs
        flag = "⚠️ " if op in DESTRUCTIVE_OPS else ""
        rows.append(f"| `{name}` | {flag}{op} | {', '.join(f'`{d}`' for d in props) or '-'} |")
    return rows


# --------------------------------------------------------------------------------------------
# The comment, within the limit


@dataclass(frozen=True)
class StackReport:
    stack: str
    summary: str
    rows: list[str]
    diff: str

    @classmethod
    def of(cls, stack: str, res: PreviewResult) -> StackReport:
        return cls(stack, summary(stack, res), table_rows(res), (res.error or res.stdout).strip())


def share(sizes: Sequence[int], budget: int) -> list[int]:
    """Split budget over parts fairly: the small ones whole, the rest equal shares (water-filling)."""
    alloc = [0] * len(sizes)
    left = max(budget, 0)
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for k, i in enumerate(order):
        alloc[i] = min(sizes[i], left // (len(sizes) - k))
        left -= alloc[i]
    return alloc


def head_lines(lines: Sequence[str], chars: int) -> list[str]:
    """The longest head of lines whose joined text (one newline each) fits in chars."""
    out, used = [], 0
    for line in lines:
        if used + len(line) + 1 > chars:
            break
        out.append(line)
        used += len(line) + 1
    return out


def _truncated(what: str, shown: int, total: int, where: str) -> str:
    unit = "rows" if what == "table" else "lines"
    return f"_✂️ truncated: {what}: {shown} of {total} {unit} shown to fit GitHub's comment limit; full report in {where}._"


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def compose(reports: Sequence[StackReport], *, max_chars: int | None = GITHUB_COMMENT_LIMIT, commit: str = "", full_report_url: str = "") -> str:
    """The comment: header and summaries whole, then tables and diffs cut to fit max_chars
    (None: nothing cut, the full report)."""
    where = f"[the run's artifact]({full_report_url})" if full_report_url else "the run's artifact"
    meta = " · ".join(x for x in (f"commit `{commit[:12]}`" if commit else "", "stacks: " + ", ".join(f"`{r.stack}`" for r in reports)) if x)
    head = [MARKER, "# Infrastructure preview", "", meta, "", *(r.summary for r in reports)]
    tables_head = ["## Changed resources", ""]
    diffs_head = ["## Full `pulumi preview --diff`", ""]

    def table(r: StackReport, rows: Sequence[str]) -> list[str]:
        out = [f"### `{r.stack}`: {len(r.rows)} changed", ""]
        if r.rows:
            out += ["| resource | change | properties |", "|---|---|---|", *rows, ""]
        if len(rows) < len(r.rows):
            out += [_truncated("table", len(rows), len(r.rows), where), ""]
        return out

    def details(r: StackReport, lines: Sequence[str]) -> list[str]:
        total = len(r.diff.splitlines())
        out = [f"<details><summary><code>{r.stack}</code>: pulumi preview --diff ({total} lines)</summary>", "", "```diff", *lines, "```", ""]
        if len(lines) < total:
            out += [_truncated("diff", len(lines), total, where), ""]
        return [*out, "</details>", ""]

    def assemble(rows: Sequence[Sequence[str]], diffs: Sequence[Sequence[str]]) -> str:
        body = [*head, *tables_head]
        for r, rs in zip(reports, rows, strict=True):
            body += table(r, rs)
        body += diffs_head
        for r, ds in zip(reports, diffs, strict=True):
            body += details(r, ds)
        return "\n".join(body)

    full_rows = [r.rows for r in reports]
    full_diffs = [r.diff.splitlines() for r in reports]
    full = assemble(full_rows, full_diffs)
    if max_chars is None or len(full) <= max_chars:
        return full
    # Fixed part: everything with empty tables and diffs, each then carrying its truncation line
    # ("0 of N lines"; the shown count may take a few more digits).
    fixed = len(assemble([[] for _ in reports], [[] for _ in reports])) + 16 * len(reports)
    if fixed > max_chars:
        raise SummariesTooLong(f"the summaries alone take {fixed} characters, over the limit of {max_chars}")
    budget = max_chars - fixed
    row_alloc = share([_size(rows) for rows in full_rows], budget)
    rows = [head_lines(rs, n) for rs, n in zip(full_rows, row_alloc, strict=True)]
    budget -= sum(_size(rs) for rs in rows)
    diff_alloc = share([_size(d) for d in full_diffs], budget)
    diffs = [head_lines(d, n) for d, n in zip(full_diffs, diff_alloc, strict=True)]
    out = assemble(rows, diffs)
    assert len(out) <= max_chars, (len(out), max_chars)
    return out


_SUMMARY_HEAD = re.compile(r"^## `(?P<stack>[^`]+)`: ", re.MULTILINE)


def summaries_of(comment: str) -> dict[str, str]:
    """stack -> its summary section as it appears in a comment (for tests and checks)."""
    end = comment.find("\n## Changed resources")
    text = comment[: end if end >= 0 else len(comment)]
    heads = list(_SUMMARY_HEAD.finditer(text))
    return {m["stack"]: text[m.start() : heads[i + 1].start() if i + 1 < len(heads) else len(text)].strip() for i, m in enumerate(heads)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stacks", nargs="+", default=["dev", "prod"])
    ap.add_argument("--out", type=Path, help="the comment (at most --max-chars characters); stdout without it")
    ap.add_argument("--full-out", type=Path, help="the full report, nothing cut (the run's artifact)")
    ap.add_argument("--max-chars", type=int, default=GITHUB_COMMENT_LIMIT, help="the comment's size limit (GitHub's: 65536)")
    ap.add_argument("--commit", default="", help="the commit previewed, named in the header")
    ap.add_argument("--full-report-url", default="", help="where the full report is (the run's page), linked from each cut")
    ap.add_argument("--throwaway-secrets", action="store_true")
    args = ap.parse_args()
    if args.throwaway_secrets:
        project = new_project({s: repo_stack_config(s) for s in args.stacks})
        key = throwaway_ssh_key()
        secrets = {"sshPrivateKey": key, "registryPassword": THROWAWAY_REGISTRY_PASSWORD}
    else:
        project = Project.checkout()
        secrets = {}
    reports, any_failed = [], False
    for stack in args.stacks:
        res = preview_stack(project, stack, {k: v for k, v in secrets.items() if k != "registryPassword" or stack == "prod"})
        any_failed |= failed(res)
        reports.append(StackReport.of(stack, res))
    if args.full_out:
        args.full_out.write_text(compose(reports, max_chars=None, commit=args.commit))
    try:
        comment = compose(reports, max_chars=args.max_chars, commit=args.commit, full_report_url=args.full_report_url)
    except SummariesTooLong as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(comment)
    else:
        print(comment)
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
