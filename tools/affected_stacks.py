"""Which of the team's stacks a change affects: what the pull-request workflow previews.

    python3 -m tools.affected_stacks --base origin/main      # JSON list, e.g. ["dev", "prod"]

A stack's own files (Pulumi.<stack>.yaml, policy/config/<stack>.json) affect that stack only.
Everything else the program, the policy pack or the engine setup reads affects every stack.
Documentation, tests and the lab (which only the `local` stack uses, never previewed in CI)
affect none. A path that is none of these counts as affecting every stack: a new top-level file
is previewed until this list says otherwise. Standard library only: it runs before setup.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable

# The stacks CI previews and deploys (local is the lab's, written by `tools.lab up`).
CI_STACKS = ("dev", "prod")
_STACK_FILE = re.compile(r"^(?:Pulumi\.(?P<a>[\w-]+)\.yaml|policy/config/(?P<b>[\w-]+)\.json)$")
# Read by nothing that previews: docs, tests, the lab, CI's test entry point.
_NO_STACK = re.compile(r"^(?:[^/]+\.md|.*/[^/]+\.md|tests/.*|lab/.*|\.ci/.*|tools/(?:lab|deploy-local|bench|test|binaries|images)(?:\.py)?|\.gitignore)$")


def affected(paths: Iterable[str], stacks: Iterable[str] = CI_STACKS) -> list[str]:
    stacks = list(stacks)
    hit: set[str] = set()
    for path in paths:
        m = _STACK_FILE.match(path)
        if m:
            name = m["a"] or m["b"]
            if name in stacks:
                hit.add(name)
            continue
        if _NO_STACK.match(path):
            continue
        return stacks
    return [s for s in stacks if s in hit]


def changed_paths(base: str) -> list[str]:
    """Paths changed between the merge base of `base` and HEAD (what the pull request changes)."""
    out = subprocess.run(["git", "diff", "--name-only", f"{base}...HEAD"], capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if p]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the pull request's base, e.g. origin/main")
    args = ap.parse_args()
    try:
        stacks = affected(changed_paths(args.base))
    except subprocess.CalledProcessError as e:
        # No base to compare with (a new branch, a force push, a shallow clone): all of them.
        print(f"warning: git diff against {args.base} failed ({e.stderr.strip()}): every stack", file=sys.stderr)
        stacks = list(CI_STACKS)
    print(json.dumps(stacks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
