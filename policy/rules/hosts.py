"""Rules for the host bootstrap's SSH side: the commands (`command:remote:Command`) and file
copies (`command:remote:CopyToRemote`) that turn plain VMs into a cluster pin host keys, log in
with keys, and keep secrets out of the logs. `daemons` judges what the steps configure.

They read what the engine sees: the `connection` object, the command text (`create`, `update`)
and `stdin` (systemd units, kubelet and registry configs arrive as stdin of an install step),
`logging`, and the resource options the policy API exposes (additional secret outputs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .common import CRITICAL, HIGH, MANDATORY, UNKNOWN, Config, Report, declared, flag, get, is_secret, rule, strings, text

COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
COPY = "command:remote:CopyToRemote"
CONNECTED_TYPES = frozenset({COMMAND, COPY})
TEXT_KEYS = ("create", "update", "stdin")
HOST_TAGS = ("hosts", "security")


def host_ref(args: Any) -> str:
    host = get(args.props, "connection", "host")
    where = f" on {host}" if isinstance(host, str) and host else ""
    return f'{args.resource_type} "{args.name}"{where}'


def step_texts(props: Any, keys: tuple[str, ...] = TEXT_KEYS) -> Iterator[tuple[str, str]]:
    """(key, text) for each known string among `keys`; unknown ones are skipped."""
    for key in keys:
        value = text(props, key)
        if value and value is not UNKNOWN:
            yield key, value


def _connections(props: Any) -> Iterator[tuple[str, Any]]:
    """The connection and any proxy (jump host) connections inside it."""
    path, conn = "connection", get(props, "connection")
    while conn is not None and conn is not UNKNOWN:
        yield path, conn
        path, conn = f"{path}.proxy", get(conn, "proxy")


# ---------------------------------------------------------------------------------------------
# SSH


@rule(
    "ssh-host-key-pinned",
    "SSH connections pin the host's public key (connection.hostKey).",
    HIGH,
    MANDATORY,
    "Set connection.hostKey (controlPlane.hostKey / workers[].hostKey in the stack config) to `ssh-keyscan -t ed25519 <address>` output.",
    settings={
        "allowedKeyTypes": strings(
            "Accepted host key types (the first word of hostKey).",
            ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        )
    },
    tags=HOST_TAGS,
)
def validate_host_key(args: Any, report: Report, cfg: Config) -> None:
    """SSH connections pin the host key (connection.hostKey) with an accepted key type."""
    if args.resource_type not in CONNECTED_TYPES:
        return
    allowed = cfg.get("allowedKeyTypes", [])
    for path, conn in _connections(args.props):
        key = get(conn, "hostKey")
        if key is UNKNOWN:
            continue
        if not key:
            report(
                f"{host_ref(args)}: {path} has no hostKey, so it trusts whatever host answers (a man-in-the-middle gets the SSH key's access). "
                f"Set {path}.hostKey to the host's public key (`ssh-keyscan -t ed25519 <host>`; controlPlane/workers[].hostKey in the stack config)."
            )
        elif isinstance(key, str) and allowed and key.split()[0] not in allowed:
            report(f"{host_ref(args)}: {path}.hostKey is of type {key.split()[0]}, which this stack does not accept. Pin a key of type {', '.join(allowed)}.")


@rule(
    "ssh-key-auth",
    "SSH connections log in with a private key, never a password.",
    HIGH,
    MANDATORY,
    "Remove connection.password; set connection.privateKey from secret config (pulumi config set --secret sshPrivateKey < key).",
    settings={"allowAgent": flag("Accept agentSocketPath instead of privateKey.", True)},
    tags=HOST_TAGS,
)
def validate_key_auth(args: Any, report: Report, cfg: Config) -> None:
    """SSH connections authenticate with a private key (or agent), never a password."""
    if args.resource_type not in CONNECTED_TYPES:
        return
    for path, conn in _connections(args.props):
        password, key, agent = get(conn, "password"), get(conn, "privateKey"), get(conn, "agentSocketPath")
        if password is not UNKNOWN and (password or is_secret(conn, "password")):
            report(
                f"{host_ref(args)}: {path} logs in with a password. Remove {path}.password and use {path}.privateKey (a key stored as secret config, sshPrivateKey)."
            )
        if key is UNKNOWN or key or (agent and cfg.get("allowAgent", True)):
            continue
        report(f"{host_ref(args)}: {path} sets no privateKey, so it has no key to log in with. Set {path}.privateKey from secret config (sshPrivateKey).")


# ---------------------------------------------------------------------------------------------
# Secrets and logging

SECRET_COMMAND_PATTERNS = [r"htpasswd", r"passw(or)?d", r"kubeconfig", r"\btokens?\b", r"private[-_ ]?keys?\b"]
SECRET_CONTENT_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n\s*[A-Za-z0-9+/=]{16,}",
    r"client-key-data:\s*[A-Za-z0-9+/=]{16,}",
    r"\btoken:\s*[A-Za-z0-9._-]{16,}",
    r"(?i)\bpassword\s*[=:]\s*\"[^\"$\s]+\"",
    r"\"auth\"\s*:\s*\"[A-Za-z0-9+/=]{8,}\"",
]
# A kubeconfig *path* handed to a tool (KUBECONFIG=..., --kubeconfig=...) carries no secret itself.
_KUBECONFIG_PATH = re.compile(r"KUBECONFIG=\S+|--kubeconfig(=|\s+)\S+")


def secret_reasons(args: Any, cfg: Config) -> list[str]:
    """Why a command handles a secret, from everything the policy API shows about it."""
    props = args.props
    reasons = []
    if is_secret(props, "stdin"):
        reasons.append("its stdin is secret")
    for path, conn in _connections(props):
        password = get(conn, "password")
        if password is not UNKNOWN and (password or is_secret(conn, "password")):
            reasons.append(f"{path}.password is set")
    for key, value in step_texts(props, ("create", "update")):
        cleaned = _KUBECONFIG_PATH.sub(" ", value)
        hits = sorted(
            {m.group(0).lower() for p in cfg.get("secretCommandPatterns", SECRET_COMMAND_PATTERNS) for m in [re.search(p, cleaned, re.IGNORECASE)] if m}
        )
        if hits:
            reasons.append(f"its {key} text mentions {', '.join(hits)}")
    stdin = text(props, "stdin")
    if stdin and stdin is not UNKNOWN and any(re.search(p, stdin) for p in cfg.get("secretContentPatterns", SECRET_CONTENT_PATTERNS)):
        reasons.append("its stdin contains key material or credentials")
    secret_outputs = set(getattr(getattr(args, "opts", None), "additional_secret_outputs", None) or ())
    if secret_outputs & {"stdout", "stderr"}:
        reasons.append("it marks stdout/stderr as secret outputs")
    return reasons


@rule(
    "secret-commands-no-logging",
    'Commands that carry secrets (secret stdin, passwords, htpasswd, kubeconfigs, key material) have logging "none".',
    CRITICAL,
    MANDATORY,
    'Create the command with logging=remote.Logging.NONE and additional_secret_outputs=["stdout", "stderr"]; pass secrets on stdin, never in the command text.',
    settings={
        "secretCommandPatterns": strings("Regexes (case-insensitive) for command text that handles secrets.", SECRET_COMMAND_PATTERNS),
        "secretContentPatterns": strings("Regexes for stdin content that is a secret.", SECRET_CONTENT_PATTERNS),
    },
    tags=HOST_TAGS,
)
def validate_secret_logging(args: Any, report: Report, cfg: Config) -> None:
    """Commands that carry secrets have logging "none"."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    logging = get(args.props, "logging")
    if logging is UNKNOWN or logging == "none":
        return
    reasons = secret_reasons(args, cfg)
    if reasons:
        shown = logging or "stdoutAndStderr (the default)"
        report(
            f"{host_ref(args)}: It handles a secret ({'; '.join(reasons)}) but its logging is {shown}, so the secret can reach the Pulumi logs. "
            'Set logging to "none" (remote.Logging.NONE) and list stdout and stderr in additional_secret_outputs.'
        )


RULES = declared(__name__)

__all__ = ["COMMAND", "LOCAL_COMMAND", "HOST_TAGS", "RULES", "host_ref", "secret_reasons", "step_texts"]
