"""Building blocks for host steps: SSH connections, host scripts, templates and hashes.

A host step is one `pulumi_command.remote.Command` that runs one script from
`components/scripts/` on one host. Scripts reach the hosts through one bundle resource per host
(`HostScripts`); each step's command names its script together with the script's hash, so a
change to a script re-runs exactly the steps that use it. Parameters travel as `VAR=value`
prefixes, file content and secrets on stdin.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import string
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi_command import remote

from .settings import Host, Settings

SCRIPTS_DIR = Path(__file__).parent / "scripts"
TEMPLATES_DIR = Path(__file__).parent / "templates"
REMOTE_LIB = "/usr/local/lib/vm-platform"


@functools.cache
def script_text(name: str) -> str:
    return (SCRIPTS_DIR / name).read_text()


@functools.cache
def template_text(name: str) -> str:
    return (TEMPLATES_DIR / name).read_text()


def render(template: str, **values: object) -> str:
    """Fill a template from components/templates ($name placeholders; all must be given)."""
    return string.Template(template_text(template)).substitute({k: str(v) for k, v in values.items()})


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


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


def script_bundle(names: Sequence[str]) -> str:
    """A self-extracting shell script that installs the named scripts (plus lib.sh) on a host.

    Plain text on purpose: `pulumi preview --diff` then shows which script lines changed.
    """
    lines = ["set -euo pipefail", f"install -d -m 0755 {REMOTE_LIB}"]
    for name in sorted(set(names) | {"lib.sh"}):
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
class Target:
    """A host and how to reach it over SSH."""

    host: Host
    connection: remote.ConnectionArgs


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
    )


def step(
    name: str,
    target: Target,
    script: str,
    *,
    parent: pulumi.Resource,
    env: Mapping[str, object] | None = None,
    stdin: pulumi.Input[str] | None = None,
    secret: bool = False,
    triggers: Sequence[pulumi.Input[str]] | None = None,
    delete: tuple[str, Mapping[str, object]] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    delete_before_replace: bool = False,
) -> remote.Command:
    """One host step: run `script` on `target`.

    secret=True: stdin carries a secret or stdout is one, so output logging is off and stdout and
    stderr are stored as secrets. `delete` is (script, env) to undo the step on `pulumi destroy`.
    """
    env_prefix = shell_env({"VMP_SCRIPT": sha256(script_text(script))[:12], **(env or {})})
    delete_cmd = None
    if delete:
        d_script, d_env = delete
        delete_cmd = f"{shell_env({'VMP_SCRIPT': sha256(script_text(d_script))[:12], **d_env})} {REMOTE_LIB}/{d_script}"
    return remote.Command(
        name,
        connection=target.connection,
        create=f"{env_prefix} {REMOTE_LIB}/{script}",
        delete=delete_cmd,
        stdin=stdin,
        triggers=list(triggers) if triggers else None,
        add_previous_output_in_env=False,
        logging=remote.Logging.NONE if secret else remote.Logging.STDOUT_AND_STDERR,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            additional_secret_outputs=["stdout", "stderr"] if secret else None,
            delete_before_replace=delete_before_replace,
        ),
    )


def install_file(
    name: str,
    target: Target,
    dest: str,
    content: pulumi.Input[str],
    *,
    parent: pulumi.Resource,
    mode: str = "0644",
    secret: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
) -> remote.Command:
    """A file on a host, written from stdin; removed again on destroy."""
    return step(
        name,
        target,
        "install-file.sh",
        parent=parent,
        env={"DEST": dest, "MODE": mode},
        stdin=content,
        secret=secret,
        delete=("remove-file.sh", {"DEST": dest}),
        depends_on=depends_on,
    )


def restart(
    name: str,
    target: Target,
    unit: str,
    reads: Sequence[pulumi.Input[str]],
    *,
    parent: pulumi.Resource,
    health: str = "true",
    timeout: int = 120,
    depends_on: Sequence[pulumi.Resource] = (),
) -> remote.Command:
    """Restart `unit` whenever one of the things it reads changes.

    `reads` are hashes (or versions) of exactly the files the unit reads; they are the triggers,
    so a change replaces this resource, which (re)starts the unit. Stopping the unit belongs to
    the unit-file resource's delete, not to this one: replacement creates the new restart before
    deleting the old, and a stop here would stop the freshly restarted service.
    """
    return step(
        name,
        target,
        "restart-service.sh",
        parent=parent,
        env={"UNIT": unit, "HEALTH": health, "TIMEOUT": timeout},
        triggers=list(reads),
        depends_on=depends_on,
    )


def unit_file(
    name: str, target: Target, unit: str, content: str, *, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = (), data_dir: str = ""
) -> remote.Command:
    """A systemd unit file; destroy stops and disables the unit and removes the file (and data_dir)."""
    dest = f"/etc/systemd/system/{unit}.service"
    stop_env = {"UNIT": unit, **({"DATA_DIR": data_dir} if data_dir else {})}
    return step(
        name,
        target,
        "install-file.sh",
        parent=parent,
        env={"DEST": dest, "MODE": "0644"},
        stdin=content,
        delete=("stop-service.sh", stop_env),
        depends_on=depends_on,
    )


class HostScripts(pulumi.ComponentResource):
    """The host scripts installed on one host (one bundle; re-installed when any of them changes).

    Outputs:
        installed: the bundle command, for steps to depend on.
    """

    installed: remote.Command

    def __init__(self, name: str, args: tuple[Target, Sequence[str]], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:host:HostScripts", name, None, opts)
        target, names = args
        self.installed = remote.Command(
            f"{name}-bundle",
            connection=target.connection,
            create="bash -s",
            stdin=script_bundle(names),
            delete=f"rm -rf {REMOTE_LIB}",
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"installed": self.installed.id})
