"""The engine's common errors, explained with the fix.

    pulumi up ... 2> >(python3 -m tools.hints >&2)     # what tools/pulumi does

Passes the engine's stderr through unchanged and, when it ends, prints one `hint:` line per
problem it recognised: what is wrong in this project's terms and the command that fixes it.
tools/drift.py words its errors the same way (explain()).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping

from . import engine

# (pattern, hint); {stack} and {backend} are filled in when known.
HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"incorrect passphrase", re.I),
        "wrong passphrase for stack {stack}: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the one the stack was "
        "created with (the lab's: ~/.cache/vm-platform/lab/passphrase); nothing was changed",
    ),
    (re.compile(r"passphrase must be set", re.I), "no passphrase for stack {stack}: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"),
    (
        re.compile(r"failed to load checkpoint|could not deserialize deployment|unexpected end of JSON input|invalid character .* looking for", re.I),
        "the state of stack {stack} cannot be read (a truncated or corrupted checkpoint); nothing was changed. Restore the last good one: "
        "with a file backend, copy {backend}/.pulumi/stacks/<project>/{stack}.json.bak over {stack}.json (older ones are in "
        ".pulumi/history/<project>/{stack}/), then run `pulumi preview` to see what it still has to do",
    ),
    (
        re.compile(r"currently locked|the stack is locked", re.I),
        "stack {stack} is locked by a running update: wait for it to end, or if that run is dead (killed, its machine gone) `pulumi cancel --yes -s {stack}`",
    ),
    (
        re.compile(r"no stack named|stack .* not found", re.I),
        "no stack {stack} in this backend: check PULUMI_BACKEND_URL (the team's shared backend) and the stack name",
    ),
    (
        re.compile(r"(dial tcp|ssh: connect|connection refused|no route to host|i/o timeout).*", re.I),
        "a host did not answer over SSH: check that it is up and that its SSH port (ssh.port) is open from this machine; steps on it did not "
        "run, and re-running `up` once it answers continues from there",
    ),
    (
        re.compile(r"host key (mismatch|verification failed)|knownhosts: key mismatch|REMOTE HOST IDENTIFICATION HAS CHANGED", re.I),
        "a host's SSH key is not the one the stack pins (hostKey): if the host was rebuilt, compare `ssh-keyscan -t ed25519 <address>` out of "
        "band, set its hostKey and run `up` (its steps re-run); otherwise do not connect: someone may be in the middle",
    ),
]


def explain(text: str, stack: str = "", backend: str = "") -> list[str]:
    """The hints for an engine error text, in table order, each once."""
    out = []
    for pattern, hint in HINTS:
        if pattern.search(text):
            out.append(hint.format(stack=stack or "<stack>", backend=backend or "<backend dir>"))
    return out


def _stack_of(argv: Iterable[str]) -> str:
    args = list(argv)
    for i, a in enumerate(args):
        if a in ("-s", "--stack") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--stack="):
            return a.split("=", 1)[1]
    return ""


def main(argv: list[str], env: Mapping[str, str]) -> int:
    seen: list[str] = []
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()
        seen.append(line)
    url = env.get("PULUMI_BACKEND_URL", "")
    backend = str(engine.backend_path(url)) if url.startswith(engine.FILE_BACKEND) else url
    for hint in explain("".join(seen), _stack_of(argv) or env.get("PULUMI_STACK", ""), backend):
        sys.stdout.write(f"hint: {hint}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
