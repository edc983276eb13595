"""Drift detection that sees the hosts: `python3 -m tools.drift --stack <name> [--cwd DIR] [--repair]`.

`pulumi refresh` cannot see host drift: the command provider has no Read (pulumi-command issue
432), so a file edited or a service stopped by hand stays invisible to the engine. This check
derives from the stack's state what every host should look like and looks:

- files: every `install-file.sh` step (DEST, MODE, the sha256 of its stdin), every binary
  (`install-binary.sh`: /usr/local/bin/NAME with its SHA256), every copy (CopyToRemote: the
  remote path and the asset's hash) and the host scripts of the bundle (their text is in it);
- units: every unit with a restart step must be enabled and active;

over ONE SSH session per host (the stack's own connection: user, port, key; the host key
pinned, an unknown or changed key is refused), running one script that prints each path's
digest and mode and each unit's state. Then `pulumi preview --refresh --expect-no-changes`
finds what changed in the Kubernetes objects (and anything else the program would change).

Secrets: the state is read with `pulumi stack export --show-secrets` into this process's memory
only (the SSH key is a secret; content digests need the secret files' text); nothing secret is
printed or written. The key reaches `ssh` through a private ssh-agent fed on stdin, never a file
or a command line.

Repair (`--repair`, what the report prints): a step whose file drifted only re-runs when its
inputs change, and a `--replace` of a file step would run its delete (remove-file.sh) after the
new create, and for a unit file stop it and remove its data. So the repair marks each drifted
file step as changed in the state (its recorded `create` gets a marker; `pulumi stack import`,
which takes the stack's lock), making the next `up` an in-place update that runs the step's
create again; the restart steps that read a drifted file or restart a stopped unit are replaced
(`--replace`, they have no delete); and `--refresh` drops Kubernetes objects deleted by hand
from the state so `up` creates them again:
    pulumi up --yes --refresh --replace <restart urn> ... -s <stack>

Exit codes: 0 no drift, 1 drift found (the Markdown report on stdout), 2 the check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import ROOT

REMOTE_LIB = "/usr/local/lib/vm-platform"
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET = "1b47061264138c4ac30d75fd1eb44270"
_ASSET = "c44067f5952c0a294b673a41bacd8c17"
NUDGE = " #vmp-drift-repair"
COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
EXIT_CLEAN, EXIT_DRIFT, EXIT_FAILED = 0, 1, 2


class DriftError(Exception):
    """The check itself failed; the message names the problem and the fix."""


# --------------------------------------------------------------------------------------------
# What the state wants


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    user: str
    host_key: str
    private_key: str = field(repr=False)


@dataclass(frozen=True)
class Step:
    urn: str
    type: str
    has_delete: bool

    @property
    def name(self) -> str:
        return self.urn.split("::")[-1]


@dataclass(frozen=True)
class WantedFile:
    path: str
    sha256: str
    step: Step
    kind: str  # file, binary, copy, script
    mode: str | None = None  # octal, as the step gave it (0644)
    stamp: str = ""  # what readers key on when it is not the sha256 (a binary's URL); sha256 "": only existence is known


@dataclass(frozen=True)
class WantedUnit:
    unit: str
    restarts: tuple[Step, ...]


@dataclass
class HostPlan:
    name: str
    connection: Connection
    files: dict[str, WantedFile] = field(default_factory=dict)
    units: dict[str, WantedUnit] = field(default_factory=dict)
    readers: dict[str, list[Step]] = field(default_factory=dict)  # digest -> restart steps keyed on it
    unchecked: list[str] = field(default_factory=list)  # steps whose effect the check cannot see


def plain(value: Any) -> Any:
    """A state value with secrets opened (from `stack export --show-secrets`) and assets as
    {"hash", "path"}; an encrypted secret is an error (the export was not decrypted)."""
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET:
            if "plaintext" not in value:
                raise DriftError("the state's secrets are still encrypted: export it with `pulumi stack export --show-secrets`")
            return plain(json.loads(value["plaintext"]))
        if value.get(_SIG) == _ASSET:
            return {"asset": True, "hash": value.get("hash", ""), "path": value.get("path", "")}
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def parse_command(line: str) -> tuple[str, dict[str, str]]:
    """`VMP_SCRIPT=x A=1 /usr/local/lib/vm-platform/s.sh` -> ("s.sh", {"A": "1", ...})."""
    try:
        words = shlex.split(line)
    except ValueError:
        return "", {}
    env: dict[str, str] = {}
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if eq and name.isidentifier():
            env[name] = value
            continue
        script = word[len(REMOTE_LIB) + 1 :] if word.startswith(REMOTE_LIB + "/") and i == len(words) - 1 else ""
        return script, env
    return "", env


def bundle_scripts(bundle: str) -> dict[str, str]:
    """The host scripts a bundle installs (components/remote.py script_bundle): path -> text."""
    out: dict[str, str] = {}
    lines = bundle.split("\n")
    i = 0
    while i < len(lines):
        words = lines[i].split()
        if len(words) == 4 and words[0] == "cat" and words[1] == ">" and words[2].endswith(".tmp") and words[3].startswith("<<'"):
            marker = words[3][3:-1]
            end = lines.index(marker, i + 1)
            out[words[2][: -len(".tmp")]] = "\n".join(lines[i + 1 : end]) + "\n"
            i = end
        i += 1
    return out


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def plan(deployment: Mapping[str, Any]) -> list[HostPlan]:
    """Per host, every file and unit the stack manages, from a decrypted state export."""
    resources = (deployment.get("deployment") or deployment).get("resources") or []
    hosts: dict[tuple[str, int], HostPlan] = {}
    restarts: dict[tuple[tuple[str, int], str], list[Step]] = {}

    def host_of(inputs: Mapping[str, Any]) -> HostPlan | None:
        c = inputs.get("connection")
        if not isinstance(c, dict) or not c.get("host"):
            return None
        key = (str(c["host"]), int(c.get("port") or 22))
        if key not in hosts:
            if not c.get("hostKey"):
                raise DriftError(f"host {key[0]}: the state has no pinned host key, so the check cannot trust it; set hostKey for it and run `pulumi up`")
            if not c.get("privateKey"):
                raise DriftError(f"host {key[0]}: the state has no SSH private key: `pulumi config set --secret sshPrivateKey < key`, then `pulumi up`")
            conn = Connection(key[0], key[1], str(c.get("user") or "root"), str(c["hostKey"]), str(c["privateKey"]))
            hosts[key] = HostPlan(key[0], conn)
        return hosts[key]

    for res in resources:
        rtype = res.get("type", "")
        if rtype not in (COMMAND, COPY) or res.get("delete"):
            continue
        inputs = plain(res.get("inputs") or {})
        h = host_of(inputs)
        if h is None:
            continue
        step = Step(res["urn"], rtype, bool(inputs.get("delete")))
        if rtype == COPY:
            source = inputs.get("source") or {}
            if isinstance(source, dict) and source.get("asset") and source.get("hash") and inputs.get("remotePath"):
                path = str(inputs["remotePath"])
                h.files[path] = WantedFile(path, source["hash"], step, "copy")
            else:
                h.unchecked.append(step.name)
            continue
        create = inputs.get("create") or ""
        stdin = inputs.get("stdin")
        if create == "bash -s" and isinstance(stdin, str) and f"install -d -m 0755 {REMOTE_LIB}" in stdin:
            h.name = step.name.removesuffix("-scripts-bundle")
            for path, text in bundle_scripts(stdin).items():
                h.files[path] = WantedFile(path, sha256(text), step, "script", "0755")
            continue
        script, env = parse_command(create)
        if script == "install-file.sh" and env.get("DEST") and isinstance(stdin, str):
            h.files[env["DEST"]] = WantedFile(env["DEST"], sha256(stdin), step, "file", env.get("MODE", "0644"))
        elif script == "install-binary.sh" and env.get("NAME"):
            # SHA256 is the executable's digest; with MEMBER it is the archive's (ARCHIVE_SHA256),
            # and a URL without one pins nothing: then only its presence can be checked.
            path = f"/usr/local/bin/{env['NAME']}"
            digest = env.get("SHA256", "") if not env.get("MEMBER") else ""
            h.files[path] = WantedFile(path, digest, step, "binary", "0755", env.get("SHA256") or env.get("URL", ""))
        elif script == "restart-service.sh" and env.get("UNIT"):
            restarts.setdefault(((h.connection.host, h.connection.port), env["UNIT"]), []).append(step)
            for digest in inputs.get("triggers") or []:
                if isinstance(digest, str):
                    h.readers.setdefault(digest, []).append(step)
        else:
            h.unchecked.append(step.name)
    for (key, unit), steps in restarts.items():
        hosts[key].units[unit] = WantedUnit(unit, tuple(steps))
    return sorted(hosts.values(), key=lambda p: p.name)


# --------------------------------------------------------------------------------------------
# What the hosts have


def check_script(p: HostPlan) -> str:
    """One script for the whole host: per path its sha256 and mode, per unit its state."""
    lines = [
        "set -u",
        'f() { if [ -f "$1" ]; then printf \'F\\t%s\\t%s\\t%s\\n\' "$(sha256sum < "$1" | cut -d\' \' -f1)" "$(stat -c %a "$1")" "$1"; '
        "else printf 'F\\t-\\t-\\t%s\\n' \"$1\"; fi; }",
        'u() { printf \'U\\t%s\\t%s\\t%s\\n\' "$(systemctl is-enabled "$1" 2>/dev/null)" "$(systemctl is-active "$1" 2>/dev/null)" "$1"; }',
    ]
    lines += [f"f {shlex.quote(path)}" for path in sorted(p.files)]
    lines += [f"u {shlex.quote(unit)}" for unit in sorted(p.units)]
    lines.append("echo VMP_DRIFT_END")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Observed:
    files: dict[str, tuple[str, str]]  # path -> (sha256 or "-", mode or "-")
    units: dict[str, tuple[str, str]]  # unit -> (is-enabled, is-active)


def parse_observed(out: str) -> Observed:
    if "VMP_DRIFT_END" not in out.split("\n"):
        raise DriftError("the host's check script stopped before its end (its output is incomplete)")
    files: dict[str, tuple[str, str]] = {}
    units: dict[str, tuple[str, str]] = {}
    for line in out.split("\n"):
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "F":
            files[parts[3]] = (parts[1], parts[2])
        elif len(parts) == 4 and parts[0] == "U":
            units[parts[3]] = (parts[1] or "not-found", parts[2] or "unknown")
    return Observed(files, units)


Runner = Callable[[Connection, str], str]


@contextlib.contextmanager
def ssh_agent(keys: Sequence[str]) -> Iterator[dict[str, str]]:
    """A private ssh-agent holding `keys` (fed on stdin): the env for ssh to use it."""
    with tempfile.TemporaryDirectory(prefix="vmp-drift-") as d:
        sock = f"{d}/agent.sock"
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.02)
            env = {**os.environ, "SSH_AUTH_SOCK": sock}
            for key in dict.fromkeys(keys):
                p = subprocess.run(["ssh-add", "-q", "-"], input=key if key.endswith("\n") else key + "\n", env=env, capture_output=True, text=True)
                if p.returncode != 0:
                    raise DriftError(
                        "the stack's SSH private key (config sshPrivateKey) cannot be loaded: "
                        f"{p.stderr.strip() or 'ssh-add failed'}; set it again with `pulumi config set --secret sshPrivateKey < key`"
                    )
            yield env
        finally:
            agent.terminate()
            agent.wait(timeout=10)


class SshRunner:
    """Runs a script on a host over one ssh session, the host key pinned to the stack's."""

    def __init__(self, env: Mapping[str, str], workdir: Path, timeout: float = 120) -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.timeout = timeout

    def argv(self, conn: Connection) -> list[str]:
        """The ssh command line (`bash -s` on the host) with the host key pinned."""
        known = self.workdir / f"known_hosts-{conn.host}-{conn.port}"
        alias = f"vmp-{conn.host}-{conn.port}"
        known.write_text(f"{alias} {conn.host_key.strip()}\n")
        return [
            "ssh", "-T", "-p", str(conn.port), "-l", conn.user,
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=no", "-o", "IdentityFile=none", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"HostKeyAlias={alias}",
            "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=10", "-o", "LogLevel=ERROR", "-F", "/dev/null",
            conn.host, "bash -s",
        ]  # fmt: skip

    def __call__(self, conn: Connection, script: str) -> str:
        cmd = self.argv(conn)
        try:
            p = subprocess.run(cmd, input=script, env=self.env, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise DriftError(f"{conn.host}: the check did not finish within {self.timeout:.0f} s") from e
        if p.returncode == 255:
            err = p.stderr.strip()
            if "Host key verification failed" in err or "REMOTE HOST IDENTIFICATION HAS CHANGED" in err or "No ED25519 host key" in err:
                raise DriftError(
                    f"{conn.host}: its SSH host key is not the one the stack pins (hostKey); refusing to connect. If the host was rebuilt, "
                    f"compare `ssh-keyscan -t ed25519 {conn.host}` out of band, set hostKey for it and run `pulumi up`"
                )
            if "Permission denied" in err:
                raise DriftError(f"{conn.host}: login as {conn.user} with the stack's SSH key was refused: check ssh.user and sshPrivateKey")
            raise DriftError(f"{conn.host}:{conn.port} is unreachable over SSH ({err or 'ssh exit 255'}): is the host up and port {conn.port} open from here?")
        if p.returncode != 0:
            raise DriftError(f"{conn.host}: the check script failed ({p.returncode}): {p.stderr.strip()[-400:]}")
        return p.stdout


# --------------------------------------------------------------------------------------------
# Comparison and report


@dataclass(frozen=True)
class Finding:
    host: str
    what: str  # "file /etc/x" or "unit kubelet"
    drift: str  # changed, missing, mode 600 (wants 0644), inactive, disabled
    nudge: tuple[Step, ...] = ()  # steps whose recorded create is marked so `up` runs them again
    replace: tuple[Step, ...] = ()  # steps `up` replaces (restarts, copies)


def compare(p: HostPlan, seen: Observed) -> list[Finding]:
    out: list[Finding] = []
    for path, want in sorted(p.files.items()):
        got_sha, got_mode = seen.files.get(path, ("-", "-"))
        if got_sha == "-":
            drift = "missing"
        elif want.sha256 and got_sha != want.sha256:
            drift = f"changed (sha256 {got_sha[:12]}, wants {want.sha256[:12]})"
        elif want.mode and got_mode != "-" and int(got_mode, 8) != int(want.mode, 8):
            drift = f"mode {got_mode} (wants {want.mode})"
        else:
            continue
        writer = (want.step,)
        readers = tuple(s for s in p.readers.get(want.stamp or want.sha256, []) if s.urn != want.step.urn)
        if want.step.type == COPY:
            out.append(Finding(p.name, f"file {path}", drift, replace=(*writer, *readers)))
        else:
            out.append(Finding(p.name, f"file {path}", drift, nudge=writer, replace=readers))
    for unit, want_unit in sorted(p.units.items()):
        enabled, active = seen.units.get(unit, ("not-found", "unknown"))
        problems = [f"{active} (wants active)"] if active != "active" else []
        problems += [f"{enabled} (wants enabled)"] if enabled != "enabled" else []
        if problems:
            out.append(Finding(p.name, f"unit {unit}", ", ".join(problems), replace=want_unit.restarts))
    return out


@dataclass(frozen=True)
class K8sChange:
    op: str
    urn: str
    properties: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.urn.split("::")[-1]

    @property
    def type(self) -> str:
        return self.urn.split("::")[-2].split("$")[-1] if self.urn.count("::") >= 3 else ""


IGNORED_OPS = {"same", "refresh", "read", "discard"}


def parse_preview(text: str) -> list[K8sChange]:
    """Changed resources from `pulumi preview --json` (a replacement counted once)."""
    data = json.loads(text)
    seen: dict[str, K8sChange] = {}
    for step in data.get("steps") or []:
        op = step.get("op", "")
        if op in IGNORED_OPS:
            continue
        if op in ("create-replacement", "delete-replaced"):
            op = "replace"
        props = tuple(sorted((step.get("detailedDiff") or {}).keys() or step.get("diffReasons") or []))
        urn = step.get("urn", "")
        prev = seen.get(urn)
        seen[urn] = K8sChange(op if prev is None or op == "replace" else prev.op, urn, tuple(sorted({*props, *(prev.properties if prev else ())})))
    return list(seen.values())


def preview_errors(text: str) -> list[str]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [d.get("message", "").strip() for d in data.get("diagnostics") or [] if d.get("severity") == "error"]


@dataclass
class Report:
    stack: str
    plans: list[HostPlan]
    findings: list[Finding]
    host_seconds: dict[str, float]
    k8s: list[K8sChange]
    k8s_seconds: float
    errors: list[str] = field(default_factory=list)
    cwd: Path = ROOT  # the project directory the check ran in (named in the repair command when not this checkout)

    @property
    def drifted(self) -> bool:
        return bool(self.findings or self.k8s)

    def nudges(self) -> list[Step]:
        return list({s.urn: s for f in self.findings for s in f.nudge}.values())

    def replaces(self) -> list[Step]:
        return list({s.urn: s for f in self.findings for s in f.replace}.values())

    def up_args(self) -> list[str]:
        args = ["up", "--yes", "--refresh"]
        for s in self.replaces():
            args += ["--replace", s.urn]
        return [*args, "-s", self.stack]

    def repair_command(self) -> str:
        where = "" if self.cwd.resolve() == ROOT else f" --cwd {shlex.quote(str(self.cwd))}"
        return f"python3 -m tools.drift --stack {shlex.quote(self.stack)}{where} --repair"

    def markdown(self) -> str:
        result = "check failed" if self.errors else ("drift found" if self.drifted else "no drift")
        total = sum(self.host_seconds.values())
        out = [
            f"# Drift: stack `{self.stack}`",
            "",
            f"**Result: {result}** ({len(self.plans)} hosts checked over SSH in {total:.1f} s; Kubernetes preview {self.k8s_seconds:.1f} s)",
            "",
        ]
        for e in self.errors:
            out.append(f"- **error:** {e}")
        if self.errors:
            out.append("")
        by_host: dict[str, list[Finding]] = {}
        for f in self.findings:
            by_host.setdefault(f.host, []).append(f)
        for p in self.plans:
            found = by_host.get(p.name, [])
            head = f"## {p.name} ({p.connection.host}): "
            seconds = f"{self.host_seconds[p.name]:.1f} s" if p.name in self.host_seconds else "not checked"
            counts = f"{len(p.files)} files, {len(p.units)} units, {seconds}"
            if not found:
                out += [head + f"clean ({counts})", ""]
                continue
            out += [head + f"{len(found)} drifted ({counts})", "", "| what | drift | repaired by |", "|---|---|---|"]
            for f in found:
                how = [f"re-run `{s.name}`" for s in f.nudge] + [f"replace `{s.name}`" for s in f.replace]
                out.append(f"| {f.what} | {f.drift} | {', '.join(how) or 'nothing in the stack: fix by hand'} |")
            out.append("")
        if self.k8s:
            out += [
                "## Kubernetes objects and other resources (`pulumi preview --refresh --expect-no-changes`)",
                "",
                "| op | resource | properties |",
                "|---|---|---|",
            ]
            for c in self.k8s:
                out.append(f"| {c.op} | `{c.type}` `{c.name}` | {', '.join(c.properties)} |")
            out.append("")
        unchecked = sorted({s for p in self.plans for s in p.unchecked})
        if unchecked:
            out += [f"<details><summary>{len(unchecked)} steps whose effect this check cannot see (scripts without a file digest)</summary>", ""]
            out += [", ".join(f"`{s}`" for s in unchecked), "", "</details>", ""]
        if self.drifted:
            out += ["## Repair", "", "```bash", self.repair_command(), "```", ""]
            nudges = self.nudges()
            if nudges:
                out.append(
                    "It marks these steps as changed in the state (`pulumi stack import`, under the stack's lock), so `up` runs them "
                    "again in place (a `--replace` would run their delete after the new create and remove the file): "
                    + ", ".join(f"`{s.name}`" for s in nudges)
                    + "; then it runs:"
                )
            else:
                out.append("It runs:")
            out += ["", "```bash", "pulumi " + " ".join(shlex.quote(a) for a in self.up_args()), "```", ""]
            out.append("(`--refresh` makes `up` re-create Kubernetes objects deleted by hand and re-apply changed ones; `--replace` re-runs restarts.)")
        return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# The engine


class Engine:
    """The pinned pulumi CLI in a project directory (settings as tools/pulumi has them)."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        if env is None:
            from . import engine

            env = engine.env(engine.ensure())
        self.env = {**os.environ, **env}

    def run(self, *args: str, input: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pulumi", *args], cwd=self.cwd, env=self.env, input=input, capture_output=True, text=True, timeout=timeout)

    def export(self, stack: str, show_secrets: bool) -> dict[str, Any]:
        p = self.run("stack", "export", "-s", stack, *(["--show-secrets"] if show_secrets else []))
        if p.returncode != 0:
            raise DriftError(explain_engine_error(stack, p.stderr))
        data = json.loads(p.stdout)
        if not (data.get("deployment") or {}).get("resources"):
            raise DriftError(f"stack {stack} has no state (nothing deployed in the backend PULUMI_BACKEND_URL names): run `pulumi up -s {stack}` first")
        return data

    def import_(self, stack: str, state: dict[str, Any]) -> None:
        p = self.run("stack", "import", "-s", stack, input=json.dumps(state))
        if p.returncode != 0:
            raise DriftError(f"could not mark the drifted steps in the state of {stack}: {explain_engine_error(stack, p.stderr)}")

    def preview(self, stack: str) -> tuple[list[K8sChange], float]:
        t0 = time.monotonic()
        p = self.run("preview", "--refresh", "--expect-no-changes", "--json", "-s", stack)
        elapsed = time.monotonic() - t0
        try:
            changes = parse_preview(p.stdout)
        except ValueError:
            raise DriftError(f"`pulumi preview --refresh` of {stack} failed: {explain_engine_error(stack, p.stderr or p.stdout)}") from None
        errors = preview_errors(p.stdout)
        if p.returncode != 0 and not changes:
            raise DriftError(f"`pulumi preview --refresh` of {stack} failed: " + ("; ".join(errors) or explain_engine_error(stack, p.stderr)))
        return changes, elapsed


def explain_engine_error(stack: str, stderr: str) -> str:
    """The engine's error with its fix (tools/hints.py), else its last lines."""
    from .hints import explain

    text = stderr.strip()
    found = explain(text, stack)
    if found:
        return "; ".join(found)
    last = [line for line in text.splitlines() if line.strip()][-3:]
    return " / ".join(last) or "the engine failed without a message"


# --------------------------------------------------------------------------------------------
# The check


def check_hosts(plans: Sequence[HostPlan], runner: Runner) -> tuple[list[Finding], dict[str, float], list[str]]:
    findings: list[Finding] = []
    seconds: dict[str, float] = {}
    errors: list[str] = []
    for p in plans:
        t0 = time.monotonic()
        try:
            seen = parse_observed(runner(p.connection, check_script(p)))
        except DriftError as e:
            errors.append(f"{p.name}: {e}")
            continue
        seconds[p.name] = time.monotonic() - t0
        findings += compare(p, seen)
    return findings, seconds, errors


def check(stack: str, engine: Engine, runner: Runner | None = None, kubernetes: bool = True) -> Report:
    plans = plan(engine.export(stack, show_secrets=True))
    if runner is None:
        with ssh_agent([p.connection.private_key for p in plans]) as env, tempfile.TemporaryDirectory(prefix="vmp-drift-hosts-") as d:
            findings, seconds, errors = check_hosts(plans, SshRunner(env, Path(d)))
    else:
        findings, seconds, errors = check_hosts(plans, runner)
    k8s: list[K8sChange] = []
    k8s_s = 0.0
    if kubernetes:
        try:
            k8s, k8s_s = engine.preview(stack)
        except DriftError as e:
            errors.append(str(e))
    return Report(stack, plans, findings, seconds, k8s, k8s_s, errors, engine.cwd)


def nudged(state: dict[str, Any], urns: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The (encrypted) state export with each of `urns`' recorded create marked as changed."""
    marked: list[str] = []
    for res in state["deployment"]["resources"]:
        if res["urn"] not in urns:
            continue
        for part in ("inputs", "outputs"):
            create = (res.get(part) or {}).get("create")
            if isinstance(create, str):
                res[part]["create"] = create if create.endswith(NUDGE) else create + NUDGE
        if isinstance((res.get("inputs") or {}).get("create"), str):
            marked.append(res["urn"])
    missing = urns - set(marked)
    if missing:
        raise DriftError(f"cannot mark {', '.join(sorted(u.split('::')[-1] for u in missing))} for a re-run (no plain create command in the state)")
    return state, marked


SETTLE_SECONDS = 90  # how long the check after a repair waits for objects to be ready again


def settling(report: Report) -> bool:
    """Nothing drifted on the hosts, and the preview's only changes are updates of Kubernetes
    objects with no property changed: objects its refresh found not ready (their pods probed
    again after the repair restarted a kubelet). They become ready by themselves."""
    return not report.findings and bool(report.k8s) and all(c.op == "update" and not c.properties for c in report.k8s)


def repair(report: Report, engine: Engine, extra_up_args: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    urns = {s.urn for s in report.nudges()}
    if urns:
        state, _ = nudged(engine.export(report.stack, show_secrets=False), urns)
        engine.import_(report.stack, state)
    return engine.run(*report.up_args(), *extra_up_args, timeout=3600)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.drift", description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--stack", required=True)
    ap.add_argument("--cwd", type=Path, default=ROOT, help="the project directory (default: this checkout)")
    ap.add_argument("--repair", action="store_true", help="repair what drifted (marks drifted steps, then pulumi up), then check again")
    ap.add_argument("--no-kubernetes", action="store_true", help="hosts only (skip the preview)")
    ap.add_argument("--up-arg", action="append", default=[], help="extra argument for the repair's pulumi up (e.g. --policy-pack=policy)")
    args = ap.parse_args(argv)
    try:
        engine = Engine(args.cwd)
        report = check(args.stack, engine, kubernetes=not args.no_kubernetes)
        if args.repair and report.drifted and not report.errors:
            print(report.markdown())
            t0 = time.monotonic()
            p = repair(report, engine, args.up_arg)
            print(f"## Repair run ({time.monotonic() - t0:.1f} s): `pulumi up` exited {p.returncode}\n")
            if p.returncode != 0:
                print("```\n" + "\n".join(p.stdout.splitlines()[-40:]) + "\n" + p.stderr.strip()[-2000:] + "\n```")
                print(f"error: the repair's pulumi up of {args.stack} failed (its output above)", file=sys.stderr)
                return EXIT_FAILED
            report = check(args.stack, engine, kubernetes=not args.no_kubernetes)
            deadline = time.monotonic() + SETTLE_SECONDS
            while settling(report) and time.monotonic() < deadline:
                names = ", ".join(f"`{c.name}`" for c in report.k8s)
                print(f"Not ready yet after the repair's restarts: {names}; checking again in 10 s\n")
                time.sleep(10)
                report = check(args.stack, engine, kubernetes=not args.no_kubernetes)
            print("# After the repair\n")
    except DriftError as e:
        print(f"# Drift: stack `{args.stack}`\n\n**Result: check failed**: {e}")
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(report.markdown())
    for problem in report.errors:
        print(f"error: {problem}", file=sys.stderr)
    if report.errors:
        return EXIT_FAILED
    return EXIT_DRIFT if report.drifted else EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())
