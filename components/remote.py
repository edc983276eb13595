"""What host steps are made of: SSH connections, host scripts and their bundle, templates and
digests (components/steps.py declares the steps themselves).

A host step runs one script from `components/scripts/` on one host. Its command names the
script together with the script's hash, so a change to a script re-runs exactly the steps that
use it. Parameters travel as `VAR=value` prefixes, file content and secrets on stdin.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import string
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi_command import remote

from .settings import Host, Settings

SCRIPTS_DIR = Path(__file__).parent / "scripts"
TEMPLATES_DIR = Path(__file__).parent / "templates"
REMOTE_LIB = "/usr/local/lib/vm-platform"
# What the copies leave on a host (binaries, image archives), removed with the host's last step.
STAGE_DIR = "/var/lib/vm-platform/stage"
IMAGES_DIR = "/var/lib/vm-platform/images"
STAGING_DIRS = f"{STAGE_DIR} {IMAGES_DIR}"
REMOVE_EMPTY_DIRS = "find /etc/vm-platform /var/lib/vm-platform -depth -type d -empty -delete 2>/dev/null || true"


@functools.cache
def script_text(name: str) -> str:
    return (SCRIPTS_DIR / name).read_text()


@functools.cache
def template_text(name: str) -> str:
    return (TEMPLATES_DIR / name).read_text()


def render(template: str, **values: object) -> str:
    """Fill a template from components/templates ($name placeholders; all must be given)."""
    return string.Template(template_text(template)).substitute({k: str(v) for k, v in values.items()})


def toml_string(value: str) -> str:
    """`value` as a TOML basic string, quotes included.

    Values such as a registry password are chosen by people: pasted into TOML between quotes,
    a `"` would end the string early and what follows would be read as keys."""
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def content_digest(content: pulumi.Input[str]) -> pulumi.Input[str]:
    """sha256 of a step's content: a str for a str, an Output (secret if it is) for an Output."""
    if isinstance(content, str):
        return sha256(content)
    output: pulumi.Output[str] = pulumi.Output.from_input(content)  # type: ignore[arg-type]  # an Awaitable is fine too
    return output.apply(sha256)


@functools.cache
def file_sha256(path: str) -> str:
    """sha256 of a (large) local file, remembered across runs by (path, size, mtime).

    The local stack hashes ~500 MB of binaries; re-hashing them on every preview would cost
    about a second, so the digest is kept in a small cache file beside the other caches."""
    st = os.stat(path)
    key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = Path(os.environ.get("VMP_CACHE", Path.home() / ".cache" / "vm-platform")) / "sha256-cache.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    cache[key] = h.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only cache only costs time
    return cache[key]


def oci_archive_digest(path: str) -> str:
    """The manifest digest an OCI archive's index.json names: its identity, without hashing it."""
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{path}: no index.json (not an OCI archive)")
        index = json.load(member)
    return index["manifests"][0]["digest"]


def shell_env(env: Mapping[str, object]) -> str:
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())


def command_line(script: str, env: Mapping[str, object]) -> str:
    """`VMP_SCRIPT=<hash> VAR=value ... /usr/local/lib/vm-platform/<script>`.

    The script's hash in the text makes an edit of the script an edit of every command that runs
    it (and of no other)."""
    return f"{shell_env({'VMP_SCRIPT': sha256(script_text(script))[:12], **env})} {REMOTE_LIB}/{script}"


# `. /usr/local/lib/vm-platform/x.sh`, `. "$(dirname "$0")/x.sh"`, `. "$VMP_LIB/x.sh"`
_SOURCE_LINE = re.compile(
    r'^\s*(?:\.|source)\s+"?(?:' + re.escape(REMOTE_LIB) + r'/|\$\(dirname "\$0"\)/|\$\{?VMP_LIB\}?/)([A-Za-z0-9_.-]+\.sh)"?\s*(?:#.*)?$',
    re.MULTILINE,
)


def with_libraries(names: Iterable[str]) -> set[str]:
    """The scripts `names` plus every library they source, transitively."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(_SOURCE_LINE.findall(script_text(name)))
    return found


def script_bundle(names: Iterable[str], owner: Owner) -> str:
    """A self-extracting shell script that claims the host for `owner` (claim-host.sh) and
    installs the named scripts on it.

    Plain text on purpose: `pulumi preview --diff` then shows which script lines changed.
    """
    lines = [
        "set -euo pipefail",
        f"{shell_env({'OWNER_ID': owner.id, 'OWNER': owner.name})} bash <<'VMP_END_OF_CLAIM'",
        script_text("claim-host.sh").rstrip("\n"),
        "VMP_END_OF_CLAIM",
        f"install -d -m 0755 {REMOTE_LIB}",
    ]
    for name in sorted(set(names)):
        marker = "VMP_END_OF_" + name.replace(".", "_").replace("-", "_").upper()
        target = f"{REMOTE_LIB}/{name}"
        lines += [
            f"cat > {target}.tmp <<'{marker}'",
            script_text(name).rstrip("\n"),
            marker,
            f"chmod 0755 {target}.tmp && mv -f {target}.tmp {target}",
        ]
    lines.append("echo installed")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Owner:
    """The stack that manages a host: every host is claimed for one stack (claim-host.sh)."""

    id: str  # stable for the stack wherever it runs from, distinct between stacks
    name: str  # project/stack, for messages

    def release_command(self) -> str:
        """Shell that removes the host's claim, if it is this stack's."""
        return f'[ "$(cut -d" " -f1 /etc/vm-platform/owner 2>/dev/null)" != {self.id} ] || rm -f /etc/vm-platform/owner'


_STACK_KEY = re.compile(r"^(encryptionsalt|encryptedkey):\s*(\S+)\s*$", re.MULTILINE)


@functools.cache
def stack_owner(project: str, stack: str) -> Owner:
    """This stack's identity: project, stack name and the stack's own secrets key material
    (`encryptionsalt` or `encryptedkey` in Pulumi.<stack>.yaml, made once when the stack's
    secrets provider is set up). Two stacks of the same name in different backends or copies of
    the project differ in it; the same stack run from two checkouts or a CI runner does not.
    Without key material (no secrets provider configured) it falls back to project/stack."""
    try:
        text = Path(f"Pulumi.{stack}.yaml").read_text()
    except OSError:
        text = ""
    material = "|".join(m.group(2) for m in _STACK_KEY.finditer(text))
    return Owner(sha256(f"{project}/{stack}|{material}")[:16], f"{project}/{stack}")


@dataclass(frozen=True)
class Target:
    """A host, how to reach it over SSH, and the stack it belongs to."""

    host: Host
    connection: remote.ConnectionArgs
    owner: Owner


def connect(settings: Settings, host: Host) -> Target:
    return Target(
        host,
        remote.ConnectionArgs(
            host=host.address,
            port=settings.ssh.port,
            user=settings.ssh.user,
            private_key=settings.ssh.private_key.output(),
            host_key=host.host_key,
            dial_error_limit=settings.ssh.dial_error_limit,
            per_dial_timeout=settings.ssh.per_dial_timeout,
        ),
        stack_owner(pulumi.get_project(), pulumi.get_stack()),
    )
