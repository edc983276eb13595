"""What the CI workflows write to GitHub, through its REST API: the one preview comment per pull
request (edited in place) and the one drift issue (opened or updated while drift is found,
closed when it is gone). Standard library only; it runs on any runner with python3.

    python3 -m tools.ci_github comment --pr 12 --body comment.md
    python3 -m tools.ci_github drift-issue --reports drift/ --stacks dev prod [--run-url URL]

drift-issue reads what each stack's drift job left in --reports: drift-<stack>.state (clean,
drifted or error) and drift-<stack>.md (the drift command's report). Any stack drifted: the one
issue is opened or updated with every stack's state and the drifted stacks' reports. Every stack
clean: the issue is closed. Otherwise (a check failed or left nothing) the issue is left as it
is, since nothing is known. Exit 1 when a check failed or left nothing.

Needs GITHUB_API_URL, GITHUB_REPOSITORY and GITHUB_TOKEN (Actions sets the first two; the
workflow passes the job's token). The token is sent as a header only, never printed.
The comment and the issue are found by the hidden marker their body starts with, written by
the workflow's own account (--author), so a person quoting a marker is never edited.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PREVIEW_MARKER = "<!-- vm-platform-preview -->"  # = tools.pr_preview.MARKER (a unit test checks)
DRIFT_MARKER = "<!-- vm-platform-drift -->"
DRIFT_LABEL = "drift"
DRIFT_TITLE = "Drift: the hosts or the cluster differ from the stacks"
BOT = "github-actions[bot]"
BODY_LIMIT = 65536


class GitHubError(Exception):
    pass


class GitHub:
    def __init__(self, api: str, repo: str, token: str) -> None:
        self.api = api.rstrip("/")
        self.repo = repo
        self._token = token

    @classmethod
    def from_env(cls) -> GitHub:
        missing = [k for k in ("GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_TOKEN") if not os.environ.get(k)]
        if missing:
            raise GitHubError(f"missing environment: {', '.join(missing)}")
        return cls(os.environ["GITHUB_API_URL"], os.environ["GITHUB_REPOSITORY"], os.environ["GITHUB_TOKEN"])

    def call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(
            f"{self.api}/repos/{self.repo}/{path}",
            method=method,
            data=json.dumps(data).encode() if data is not None else None,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (the API's URL from the runner)
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise GitHubError(f"{method} {path}: HTTP {e.code}: {detail}") from None
        return json.loads(text) if text else None

    def pages(self, path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        sep = "&" if "?" in path else "?"
        for page in range(1, 100):
            items = self.call("GET", f"{path}{sep}per_page=100&page={page}")
            out += items
            if len(items) < 100:
                break
        return out


def mine(item: dict[str, Any], marker: str, author: str) -> bool:
    return (item.get("user") or {}).get("login") == author and (item.get("body") or "").startswith(marker)


def fit(body: str, limit: int = BODY_LIMIT) -> str:
    if len(body) <= limit:
        return body
    note = "\n\n_✂️ truncated to fit GitHub's limit; the full report is in the run's artifact._\n"
    return body[: limit - len(note)] + note


def upsert_comment(gh: GitHub, pr: int, body: str, *, marker: str = PREVIEW_MARKER, author: str = BOT) -> str:
    if not body.startswith(marker):
        raise GitHubError(f"the comment must start with its marker {marker}")
    found = next((c for c in gh.pages(f"issues/{pr}/comments") if mine(c, marker, author)), None)
    if found:
        gh.call("PATCH", f"issues/comments/{found['id']}", {"body": fit(body)})
        return f"updated comment {found['id']} on #{pr}"
    created = gh.call("POST", f"issues/{pr}/comments", {"body": fit(body)})
    return f"created comment {created['id']} on #{pr}"


STATE_TEXT = {"clean": "✅ no drift", "drifted": "❌ drifted", "error": "⚠️ check failed", "missing": "⚠️ check left no result"}


def drift_body(states: dict[str, str], reports: dict[str, str], run_url: str = "") -> str:
    lines = [DRIFT_MARKER, "# Drift", "", f"Found by the scheduled drift check{f' ([run]({run_url}))' if run_url else ''}.", ""]
    lines += ["| stack | state |", "|---|---|", *(f"| `{s}` | {STATE_TEXT.get(st, st)} |" for s, st in states.items()), ""]
    for stack, state in states.items():
        if state == "drifted":
            lines += [f"## `{stack}`", "", reports.get(stack, "").strip() or "(the drift command printed no report)", ""]
    return "\n".join(lines)


def read_reports(directory: Path, stacks: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    states, reports = {}, {}
    for stack in stacks:
        state_file, report = directory / f"drift-{stack}.state", directory / f"drift-{stack}.md"
        state = state_file.read_text().strip() if state_file.exists() else "missing"
        states[stack] = state if state in STATE_TEXT else "error"
        reports[stack] = report.read_text() if report.exists() else ""
    return states, reports


def drift_issue(gh: GitHub, states: dict[str, str], reports: dict[str, str], *, run_url: str = "", author: str = BOT) -> str:
    # By creator, not label: a label the token may not set is dropped silently, and then the
    # issue would never be found again (one more issue each night).
    issues = [i for i in gh.pages(f"issues?state=open&creator={urllib.parse.quote(author)}") if "pull_request" not in i]
    found = next((i for i in issues if mine(i, DRIFT_MARKER, author)), None)
    if "drifted" in states.values():
        text = fit(drift_body(states, reports, run_url))
        if found:
            gh.call("PATCH", f"issues/{found['number']}", {"body": text})
            return f"updated drift issue #{found['number']}"
        created = gh.call("POST", "issues", {"title": DRIFT_TITLE, "body": text, "labels": [DRIFT_LABEL]})
        return f"opened drift issue #{created['number']}"
    if any(st != "clean" for st in states.values()):
        return "no drift found, but not every check ran: the drift issue is left as it is"
    if not found:
        return "no drift, no open drift issue"
    gh.call("POST", f"issues/{found['number']}/comments", {"body": f"No drift found any more{f' ({run_url})' if run_url else ''}: closing."})
    gh.call("PATCH", f"issues/{found['number']}", {"state": "closed", "state_reason": "completed"})
    return f"closed drift issue #{found['number']}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("comment", help="create or edit the one preview comment of a pull request")
    c.add_argument("--pr", type=int, required=True)
    c.add_argument("--body", type=Path, required=True)
    c.add_argument("--author", default=BOT)
    d = sub.add_parser("drift-issue", help="open/update the drift issue, or close it when every stack is clean")
    d.add_argument("--reports", type=Path, required=True, help="directory of drift-<stack>.state and drift-<stack>.md")
    d.add_argument("--stacks", nargs="+", required=True)
    d.add_argument("--run-url", default="")
    d.add_argument("--author", default=BOT)
    args = ap.parse_args(argv)
    try:
        gh = GitHub.from_env()
        if args.cmd == "comment":
            print(upsert_comment(gh, args.pr, args.body.read_text(), author=args.author))
            return 0
        states, reports = read_reports(args.reports, args.stacks)
        print(drift_issue(gh, states, reports, run_url=args.run_url, author=args.author))
        for stack, state in states.items():
            print(f"{stack}: {STATE_TEXT[state]}")
        return 0 if all(st in ("clean", "drifted") for st in states.values()) else 1
    except (GitHubError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
