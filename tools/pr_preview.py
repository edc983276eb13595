"""PR preview: `pulumi preview --diff` of each stack with its policy pack config, as one Markdown
report to post on a pull request (what changes, per resource, and every policy result).

    python3 -m tools.pr_preview [--stacks dev prod] [--out report.md] [--throwaway-secrets]

Without --throwaway-secrets it previews the stacks as configured in this checkout (their secrets
must be set, as on the team's CI runner). With it, the stacks are previewed from a copy of the
project with a throwaway SSH key and registry password: previews never connect to the hosts, so
the report is the same, and CI machines without the real secrets can still produce it.
Exit status: 1 when a stack fails to preview or has a mandatory policy violation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import ROOT, in_project_venv

if __name__ == "__main__":
    in_project_venv("tools.pr_preview")  # before the harness imports pulumi

from .automation import PreviewResult, Project, new_project, repo_stack_config, throwaway_ssh_key  # noqa: E402

THROWAWAY_REGISTRY_PASSWORD = "throwaway-preview-only"


def preview_stack(project: Project, stack: str, secrets: dict[str, str]) -> PreviewResult:
    policy_config = ROOT / "policy" / "config" / f"{stack}.json"
    st = project.stack(stack, secrets)
    return project.preview(st, policy_packs=[str(ROOT / "policy")], policy_pack_configs=[str(policy_config)])


def render(stack: str, res: PreviewResult) -> str:
    changed = res.changed()
    mandatory = [p for p in res.policy if p["level"] == "mandatory"]
    status = "❌ preview failed" if res.error else ("❌ mandatory policy violations" if mandatory else "✅ ok")
    lines = [f"## `{stack}`: {status}", ""]
    counts = ", ".join(f"{n} {op}" for op, n in sorted(res.ops().items()))
    lines += [f"**Steps:** {counts or 'none'}", ""]
    if changed:
        lines += ["| resource | change | properties |", "|---|---|---|"]
        for name, (op, diffs) in sorted(changed.items()):
            detailed = res.detailed(name) or diffs
            lines.append(f"| `{name}` | {op} | {', '.join(f'`{d}`' for d in detailed) or '-'} |")
        lines.append("")
    lines += ["**Policy results:**", ""]
    if res.policy:
        lines += ["| policy | level | message |", "|---|---|---|"]
        for p in res.policy:
            lines.append(f"| `{p['policy']}` | {p['level']} | {p['message'].strip().replace('|', '/')} |")
    else:
        lines.append("no violations (vm-platform-policies)")
    lines.append("")
    body = res.stdout if not res.error else res.error
    lines += ["<details><summary>pulumi preview --diff</summary>", "", "```diff", body.strip()[-60000:], "```", "</details>", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stacks", nargs="+", default=["dev", "prod"])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--throwaway-secrets", action="store_true")
    args = ap.parse_args()
    if args.throwaway_secrets:
        project = new_project({s: repo_stack_config(s) for s in args.stacks})
        key = throwaway_ssh_key()
        secrets = {"sshPrivateKey": key, "registryPassword": THROWAWAY_REGISTRY_PASSWORD}
    else:
        project = Project.checkout()
        secrets = {}
    parts, failed = ["# Infrastructure preview", ""], False
    for stack in args.stacks:
        res = preview_stack(project, stack, {k: v for k, v in secrets.items() if k != "registryPassword" or stack == "prod"})
        failed |= bool(res.error) or any(p["level"] == "mandatory" for p in res.policy)
        parts.append(render(stack, res))
    report = "\n".join(parts)
    if args.out:
        args.out.write_text(report)
    else:
        print(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
