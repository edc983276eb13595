"""tools/ci_github.py against a fake GitHub REST API on loopback: one preview comment per pull
request edited in place, one drift issue opened, updated and closed; the token never printed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tools import ci_github
from tools.ci_github import BOT, DRIFT_MARKER, PREVIEW_MARKER

TOKEN = "ghs_fake-token-for-tests"
REPO = "team/vm-platform"


class FakeGitHub:
    """Issues, their comments and the calls made, as the REST API's issues endpoints show them."""

    def __init__(self) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.next_id = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_comment(self, issue: int, body: str, login: str = BOT) -> int:
        cid = self.new_id()
        self.comments[cid] = {"id": cid, "issue": issue, "body": body, "user": {"login": login}}
        return cid

    def handle(self, method: str, path: str, query: dict[str, list[str]], data: Any) -> tuple[int, Any]:
        self.calls.append((method, path))
        prefix = f"/repos/{REPO}/"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        parts = path[len(prefix) :].split("/")
        page, per = int(query.get("page", ["1"])[0]), int(query.get("per_page", ["30"])[0])

        def paged(items: list[Any]) -> list[Any]:
            return items[(page - 1) * per : page * per]

        match method, parts:
            case "GET", ["issues", num, "comments"]:
                return 200, paged([c for c in self.comments.values() if c["issue"] == int(num)])
            case "POST", ["issues", num, "comments"]:
                return 201, self.comments[self.add_comment(int(num), data["body"])]
            case "PATCH", ["issues", "comments", cid]:
                self.comments[int(cid)]["body"] = data["body"]
                return 200, self.comments[int(cid)]
            case "GET", ["issues"]:
                creator = query.get("creator", [""])[0]
                return 200, paged([i for i in self.issues.values() if i["state"] == "open" and i["user"]["login"] == creator])
            case "POST", ["issues"]:
                num = len(self.issues) + 1
                self.issues[num] = {"number": num, "state": "open", "user": {"login": BOT}, **data}
                return 201, self.issues[num]
            case "PATCH", ["issues", num]:
                self.issues[int(num)].update(data)
                return 200, self.issues[int(num)]
        return 404, {"message": "Not Found"}


@pytest.fixture
def github(monkeypatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._reply(401, {"message": "Bad credentials"})
                return
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length)) if length else None
            self._reply(*fake.handle(self.command, url.path, parse_qs(url.query), data))

        def _reply(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    yield fake
    server.shutdown()
    server.server_close()


def run(capsys, *args: str) -> tuple[int, str]:
    rc = ci_github.main(list(args))
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    return rc, out.out + out.err


def test_the_preview_comment_is_created_once_then_edited_in_place(github, capsys, tmp_path):
    # 150 other comments (two pages), one of them a person quoting the marker
    for i in range(150):
        github.add_comment(7, f"review {i}")
    github.add_comment(7, f"{PREVIEW_MARKER}\nquoted by a person", login="alice")
    body = tmp_path / "comment.md"
    body.write_text(f"{PREVIEW_MARKER}\n# Infrastructure preview\nfirst")
    rc, out = run(capsys, "comment", "--pr", "7", "--body", str(body))
    assert rc == 0 and out.startswith("created comment")
    body.write_text(f"{PREVIEW_MARKER}\n# Infrastructure preview\nsecond")
    rc, out = run(capsys, "comment", "--pr", "7", "--body", str(body))
    assert rc == 0 and out.startswith("updated comment")
    ours = [c for c in github.comments.values() if c["user"]["login"] == BOT and c["body"].startswith(PREVIEW_MARKER)]
    assert len(ours) == 1 and ours[0]["body"].endswith("second")
    assert next(c for c in github.comments.values() if c["user"]["login"] == "alice")["body"].endswith("quoted by a person")
    assert ("GET", f"/repos/{REPO}/issues/7/comments") in github.calls


def test_a_comment_without_the_marker_is_refused(github, capsys, tmp_path):
    body = tmp_path / "comment.md"
    body.write_text("# Infrastructure preview")
    rc, out = run(capsys, "comment", "--pr", "7", "--body", str(body))
    assert rc == 1 and "must start with its marker" in out and not github.comments


def test_an_oversized_body_is_cut_to_the_limit(github, capsys, tmp_path):
    body = tmp_path / "comment.md"
    body.write_text(PREVIEW_MARKER + "x" * 100_000)
    assert run(capsys, "comment", "--pr", "3", "--body", str(body))[0] == 0
    (posted,) = github.comments.values()
    assert len(posted["body"]) <= 65536 and "truncated" in posted["body"]


def write_reports(d: Path, **states: str) -> Path:
    d.mkdir(exist_ok=True)
    for stack, state in states.items():
        (d / f"drift-{stack}.state").write_text(f"{state}\n")
        (d / f"drift-{stack}.md").write_text(f"{stack}: /etc/kubernetes/kubelet.yaml digest differs; repair: tools/pulumi up -s {stack}\n")
    return d


def test_drift_opens_one_issue_updates_it_and_closes_it_when_gone(github, capsys, tmp_path):
    github.issues[1] = {"number": 1, "state": "open", "user": {"login": "alice"}, "body": f"{DRIFT_MARKER}\nquoted", "labels": ["drift"]}
    reports = tmp_path / "drift"
    rc, out = run(capsys, "drift-issue", "--reports", str(write_reports(reports, dev="drifted", prod="clean")), "--stacks", "dev", "prod")
    assert rc == 0 and out.startswith("opened drift issue #2")
    assert github.issues.pop(1)["body"].endswith("quoted")
    github.issues[1] = github.issues.pop(2) | {"number": 1}
    issue = github.issues[1]
    assert issue["labels"] == ["drift"] and issue["body"].startswith(DRIFT_MARKER)
    assert "| `dev` | ❌ drifted |" in issue["body"] and "| `prod` | ✅ no drift |" in issue["body"]
    assert "kubelet.yaml digest differs; repair: tools/pulumi up -s dev" in issue["body"] and "up -s prod" not in issue["body"]

    rc, out = run(capsys, "drift-issue", "--reports", str(write_reports(reports, dev="drifted", prod="drifted")), "--stacks", "dev", "prod")
    assert rc == 0 and out.startswith("updated drift issue #1") and len(github.issues) == 1
    assert "up -s prod" in github.issues[1]["body"]

    rc, out = run(
        capsys,
        "drift-issue",
        "--reports",
        str(write_reports(reports, dev="clean", prod="clean")),
        "--stacks",
        "dev",
        "prod",
        "--run-url",
        "https://example.invalid/r/9",
    )
    assert rc == 0 and out.startswith("closed drift issue #1")
    assert github.issues[1]["state"] == "closed"
    assert any(c["issue"] == 1 and "No drift found any more (https://example.invalid/r/9)" in c["body"] for c in github.comments.values())

    rc, out = run(capsys, "drift-issue", "--reports", str(reports), "--stacks", "dev", "prod")
    assert rc == 0 and out.startswith("no drift, no open drift issue") and len(github.issues) == 1


def test_a_failed_check_never_closes_the_issue(github, capsys, tmp_path):
    reports = tmp_path / "drift"
    run(capsys, "drift-issue", "--reports", str(write_reports(reports, dev="drifted", prod="clean")), "--stacks", "dev", "prod")
    write_reports(reports, dev="clean")
    (reports / "drift-prod.state").unlink()  # prod's job left nothing
    rc, out = run(capsys, "drift-issue", "--reports", str(reports), "--stacks", "dev", "prod")
    assert rc == 1 and "left as it is" in out and "prod: ⚠️ check left no result" in out
    assert github.issues[1]["state"] == "open"


def test_an_api_error_is_reported_without_the_token(github, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/other")
    body = tmp_path / "comment.md"
    body.write_text(PREVIEW_MARKER)
    rc, out = run(capsys, "comment", "--pr", "1", "--body", str(body))
    assert rc == 1 and "HTTP 404" in out


def test_missing_environment_is_named(capsys, monkeypatch, tmp_path):
    for k in ("GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    rc, out = run(capsys, "drift-issue", "--reports", str(tmp_path), "--stacks", "dev")
    assert rc == 1 and "missing environment: GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_TOKEN" in out
