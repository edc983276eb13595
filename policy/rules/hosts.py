"""Rules for the host bootstrap: the SSH commands (`command:remote:Command`) and file copies
(`command:remote:CopyToRemote`) that turn plain VMs into a cluster.

They read what the engine sees: the `connection` object, the command text (`create`, `update`)
and `stdin` (systemd units, kubelet and registry configs arrive as stdin of an install step),
`logging`, and the resource options the policy API exposes (additional secret outputs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from .common import (
    CRITICAL,
    HIGH,
    MANDATORY,
    UNKNOWN,
    Config,
    Rule,
    get,
    is_secret,
    number,
    text,
)

COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
COPY = "command:remote:CopyToRemote"
CONNECTED_TYPES = frozenset({COMMAND, COPY})
TEXT_KEYS = ("create", "update", "stdin")

Report = Callable[..., None]


def host_ref(args: Any) -> str:
    host = get(args.props, "connection", "host")
    where = f" on {host}" if isinstance(host, str) and host else ""
    return f'{args.resource_type} "{args.name}"{where}'


def _texts(props: Any, keys: tuple[str, ...] = TEXT_KEYS) -> Iterator[tuple[str, str]]:
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
    for key, value in _texts(props, ("create", "update")):
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


# ---------------------------------------------------------------------------------------------
# Insecure component flags (systemd units arrive on stdin; commands may run binaries directly)

_SHELL_BREAK = {";", "&&", "||", "|", "&", "then", "do"}
_PREFIX_WORDS = {"exec", "sudo", "nohup", "env", "command"}
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")  # shell style; systemd keys (Description=) are CamelCase


def _program(token: str) -> str:
    """The program a command-position token runs: ExecStart=-/usr/bin/x -> x."""
    token = re.sub(r"^ExecStart(Pre|Post)?=[-@:+!]*", "", token.strip("'\""))
    return token.rsplit("/", 1)[-1]


def invocations(script: str, binary: str) -> Iterator[dict[str, str]]:
    """The --flags of each invocation of `binary` in a shell script or systemd unit: the binary
    in command position (after env assignments, exec/sudo, or ExecStart=), line continuations
    joined, --flag=value and --flag value both understood."""
    joined = re.sub(r"\\\r?\n", " ", script)
    for line in joined.splitlines():
        tokens = line.split()
        command_position = True
        for i, token in enumerate(tokens):
            if token in _SHELL_BREAK:
                command_position = True
                continue
            if not command_position:
                continue
            if _ENV_ASSIGNMENT.match(token) or token in _PREFIX_WORDS:
                continue  # VAR=value prefixes and exec/sudo keep the command position
            if _program(token) != binary:
                command_position = False
                continue
            command_position = False
            flags: dict[str, str] = {}
            j = i + 1
            while j < len(tokens) and tokens[j] not in _SHELL_BREAK:
                tok = tokens[j].strip("'\"")
                if tok.startswith("--"):
                    name, eq, value = tok[2:].partition("=")
                    if not eq and j + 1 < len(tokens) and not tokens[j + 1].startswith("-") and tokens[j + 1] not in _SHELL_BREAK:
                        value, j = tokens[j + 1].strip("'\""), j + 1
                    flags[name] = value if (eq or value) else "true"
                j += 1
            yield flags


def _nonzero(value: str | None) -> bool:
    n = number(value)
    return value is not None and (n is None or n != 0)


def apiserver_problems(flags: dict[str, str], cfg: Config) -> Iterator[str]:
    if flags.get("anonymous-auth", "true").lower() != "false":
        yield "anonymous requests are allowed (--anonymous-auth is not false; it defaults to true). Set --anonymous-auth=false"
    modes = flags.get("authorization-mode", "" if "authorization-config" in flags else "AlwaysAllow")
    if "AlwaysAllow" in modes.split(","):
        yield "authorization admits every request (--authorization-mode includes AlwaysAllow, the default when unset). Set --authorization-mode=Node,RBAC"
    if _nonzero(flags.get("insecure-port")):
        yield f"it serves an unauthenticated insecure port (--insecure-port={flags['insecure-port']}). Remove --insecure-port (or set it to 0)"
    if "insecure-bind-address" in flags:
        yield "it sets --insecure-bind-address, which exposes the unauthenticated port. Remove --insecure-bind-address"
    if flags.get("allow-privileged", "").lower() == "true" and not cfg.get("allowPrivileged", False):
        yield "it sets --allow-privileged=true, so privileged pods are admitted cluster-wide. Set --allow-privileged=false (Pod Security Admission governs the rest)"


def validate_apiserver_flags(args: Any, report: Report, cfg: Config) -> None:
    """kube-apiserver runs with authentication and authorization, and no insecure port."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    for key, value in _texts(args.props):
        for flags in invocations(value, "kube-apiserver"):
            for problem in apiserver_problems(flags, cfg):
                report(f"{host_ref(args)}: The kube-apiserver in its {key} is insecure: {problem}.")


_ETCD_URLS = re.compile(
    r"(?i)(?:--|ETCD_|^|\s)(?P<flag>(?:listen|advertise|initial-advertise)[-_](?P<kind>client|peer)[-_]urls)[\"']?\s*[=:]\s*[\"']?(?P<urls>[^\s\"'\\]+)"
)
_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$")


def plaintext_urls(script: str, include_peer: bool) -> Iterator[tuple[str, str]]:
    """(flag, url) for each etcd client (and peer) URL that is http:// on a non-loopback host."""
    for m in _ETCD_URLS.finditer(script):
        if m["kind"].lower() == "peer" and not include_peer:
            continue
        for url in m["urls"].split(","):
            mm = re.match(r"(?i)http://(\[[^\]]+\]|[^:/]+)", url)
            if mm and not _LOOPBACK.match(mm.group(1)):
                yield m["flag"], url


def validate_etcd_urls(args: Any, report: Report, cfg: Config) -> None:
    """etcd serves clients (and peers) over TLS on every non-loopback address."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    for key, value in _texts(args.props):
        for flag, url in plaintext_urls(value, cfg.get("includePeerUrls", True)):
            report(
                f"{host_ref(args)}: Its {key} configures etcd with {flag} {url}, plaintext http on a non-loopback address, so anyone on the network reads and writes "
                "the cluster's state. Use https:// with --client-cert-auth (and peer TLS), or bind plaintext to 127.0.0.1 only."
            )


def kubelet_flag_problems(flags: dict[str, str]) -> Iterator[str]:
    has_config = "config" in flags  # without --config the flag defaults apply, and they are insecure
    if flags.get("anonymous-auth", "false" if has_config else "true").lower() != "false":
        yield "--anonymous-auth is not false. Set authentication.anonymous.enabled: false in the kubelet config (or --anonymous-auth=false)"
    if "AlwaysAllow" in flags.get("authorization-mode", "" if has_config else "AlwaysAllow"):
        yield "--authorization-mode is AlwaysAllow. Use authorization.mode: Webhook in the kubelet config"
    if _nonzero(flags.get("read-only-port", None if has_config else "10255")):
        yield f"the unauthenticated read-only port {flags.get('read-only-port', '10255')} is open. Set readOnlyPort: 0 in the kubelet config"
    if flags.get("allow-privileged", "").lower() == "true":
        yield "--allow-privileged=true is set. Remove it"


def kubelet_config_problems(doc: Any) -> Iterator[str]:
    port = get(doc, "readOnlyPort")
    if number(port) not in (None, 0.0):
        yield f"readOnlyPort is {port}, an unauthenticated port. Set readOnlyPort: 0"
    if get(doc, "authentication", "anonymous", "enabled") is True:
        yield "authentication.anonymous.enabled is true. Set it to false"
    if get(doc, "authorization", "mode") == "AlwaysAllow":
        yield "authorization.mode is AlwaysAllow. Set it to Webhook"


def _kubelet_configs(script: str) -> Iterator[Any]:
    if "KubeletConfiguration" not in script:
        return
    import yaml  # only for the few texts that hold a kubelet config

    try:
        docs = list(yaml.safe_load_all(script))
    except yaml.YAMLError:
        return
    yield from (d for d in docs if isinstance(d, dict) and d.get("kind") == "KubeletConfiguration")


def validate_kubelet(args: Any, report: Report, cfg: Config) -> None:
    """The kubelet has no anonymous access, no AlwaysAllow authorization and no read-only port."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    for key, value in _texts(args.props):
        for flags in invocations(value, "kubelet"):
            for problem in kubelet_flag_problems(flags):
                report(f"{host_ref(args)}: The kubelet command line in its {key} is insecure: {problem}.")
        for doc in _kubelet_configs(value):
            for problem in kubelet_config_problems(doc):
                report(f"{host_ref(args)}: The KubeletConfiguration in its {key} is insecure: {problem} (kubelet.* in the stack config).")


# ---------------------------------------------------------------------------------------------
# Plain-http registry

_HOSTS_TOML_HTTP = re.compile(r'(?m)^\s*(server\s*=\s*"http://|\[host\."http://)')


def _registry_config_without_tls(script: str) -> bool:
    """A distribution registry config (storage + http.addr) with no http.tls block."""
    if "storage:" not in script or "http:" not in script or "addr:" not in script:
        return False
    import yaml

    try:
        doc = yaml.safe_load(script)
    except yaml.YAMLError:
        return False
    http = doc.get("http") if isinstance(doc, dict) else None
    return isinstance(http, dict) and "addr" in http and "storage" in doc and "tls" not in http


def validate_plain_http_registry(args: Any, report: Report, cfg: Config) -> None:
    """Plain-http registries appear only in stacks that allow them."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND) or cfg.get("allowPlainHttpRegistry", False):
        return
    stdin = text(args.props, "stdin")
    if not stdin or stdin is UNKNOWN:
        return
    if _HOSTS_TOML_HTTP.search(stdin):
        report(
            f"{host_ref(args)}: It writes a containerd registry host config (hosts.toml) that pulls over plain http, which this stack does not allow. "
            "Serve the registry over TLS (registry.tls: true) so nodes pull with https and the cluster CA."
        )
    if _registry_config_without_tls(stdin):
        report(
            f"{host_ref(args)}: It writes a registry config whose http section has no tls block, so the registry serves plain http, which this stack does not allow. "
            "Set registry.tls: true (the certificate comes from the cluster PKI)."
        )


# ---------------------------------------------------------------------------------------------
# The rules

_TAGS = ("hosts", "security")

RULES: list[Rule] = [
    Rule(
        "ssh-host-key-pinned",
        "SSH connections pin the host's public key (connection.hostKey).",
        HIGH,
        MANDATORY,
        "Set connection.hostKey (controlPlane.hostKey / workers[].hostKey in the stack config) to `ssh-keyscan -t ed25519 <address>` output.",
        validate_host_key,
        settings={
            "allowedKeyTypes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
                "description": "Accepted host key types (the first word of hostKey).",
            }
        },
        tags=_TAGS,
    ),
    Rule(
        "ssh-key-auth",
        "SSH connections log in with a private key, never a password.",
        HIGH,
        MANDATORY,
        "Remove connection.password; set connection.privateKey from secret config (pulumi config set --secret sshPrivateKey < key).",
        validate_key_auth,
        settings={"allowAgent": {"type": "boolean", "default": True, "description": "Accept agentSocketPath instead of privateKey."}},
        tags=_TAGS,
    ),
    Rule(
        "secret-commands-no-logging",
        'Commands that carry secrets (secret stdin, passwords, htpasswd, kubeconfigs, key material) have logging "none".',
        CRITICAL,
        MANDATORY,
        'Create the command with logging=remote.Logging.NONE and additional_secret_outputs=["stdout", "stderr"]; pass secrets on stdin, never in the command text.',
        validate_secret_logging,
        settings={
            "secretCommandPatterns": {
                "type": "array",
                "items": {"type": "string"},
                "default": SECRET_COMMAND_PATTERNS,
                "description": "Regexes (case-insensitive) for command text that handles secrets.",
            },
            "secretContentPatterns": {
                "type": "array",
                "items": {"type": "string"},
                "default": SECRET_CONTENT_PATTERNS,
                "description": "Regexes for stdin content that is a secret.",
            },
        },
        tags=_TAGS,
    ),
    Rule(
        "apiserver-insecure-flags",
        "kube-apiserver runs with --anonymous-auth=false, no AlwaysAllow authorization, no insecure port or bind address, and not --allow-privileged=true.",
        CRITICAL,
        MANDATORY,
        "Fix the flags in components/templates/kube-apiserver.service: --anonymous-auth=false --authorization-mode=Node,RBAC, no --insecure-port/--insecure-bind-address.",
        validate_apiserver_flags,
        settings={"allowPrivileged": {"type": "boolean", "default": False, "description": "Accept --allow-privileged=true."}},
        tags=_TAGS,
    ),
    Rule(
        "etcd-plaintext-urls",
        "etcd client (and peer) URLs use https on every non-loopback address.",
        CRITICAL,
        MANDATORY,
        "Use https:// client URLs with --client-cert-auth=true and the etcd CA; keep http only on 127.0.0.1.",
        validate_etcd_urls,
        settings={"includePeerUrls": {"type": "boolean", "default": True, "description": "Also check --listen-peer-urls / --initial-advertise-peer-urls."}},
        tags=_TAGS,
    ),
    Rule(
        "kubelet-insecure-config",
        "The kubelet allows no anonymous requests, does not authorize with AlwaysAllow and keeps the read-only port closed.",
        CRITICAL,
        MANDATORY,
        "In the KubeletConfiguration: authentication.anonymous.enabled: false, authorization.mode: Webhook, readOnlyPort: 0; no --allow-privileged.",
        validate_kubelet,
        tags=_TAGS,
    ),
    Rule(
        "registry-plain-http",
        "The private registry is served and pulled over https unless the stack allows plain http.",
        HIGH,
        MANDATORY,
        "Set registry.tls: true (and registry.allowPlainHttp: false) in the stack config, or allow it for this stack with allowPlainHttpRegistry.",
        validate_plain_http_registry,
        settings={"allowPlainHttpRegistry": {"type": "boolean", "default": False, "description": "This stack may use a plain-http registry (dev only)."}},
        tags=_TAGS,
    ),
]

__all__ = ["RULES", "invocations", "plaintext_urls", "secret_reasons"]
