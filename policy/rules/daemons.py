"""Rules for what the host steps configure: kube-apiserver and kubelet flags and the kubelet's
config file, etcd's URLs, and the private registry's transport. Systemd units and config files
arrive as the stdin of an install step; commands may also run a binary directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .common import CRITICAL, HIGH, MANDATORY, UNKNOWN, Config, Report, declared, flag, get, number, rule, show, strings, text
from .hosts import COMMAND, HOST_TAGS, LOCAL_COMMAND, host_ref, step_texts

# ---------------------------------------------------------------------------------------------
# Insecure component flags (systemd units arrive on stdin; commands may run binaries directly)

_SHELL_BREAK = {";", "&&", "||", "|", "&", "then", "do"}
_PREFIX_WORDS = {"exec", "sudo", "nohup", "env", "command"}
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")  # shell style; systemd keys (Description=) are CamelCase


def _program(token: str) -> str:
    """The program a command-position token runs: ExecStart=-/usr/bin/x -> x."""
    token = re.sub(r"^ExecStart(Pre|Post)?=[-@:+!]*", "", token.strip("'\""))
    return token.rsplit("/", 1)[-1]


_INFO_ONLY = {"version", "help"}


def invocations(script: str, binary: str) -> Iterator[dict[str, str]]:
    """The --flags of each invocation of `binary` in a shell script or systemd unit: the binary
    in command position (after env assignments, exec/sudo, or ExecStart=), line continuations
    joined, --flag=value and --flag value both understood. An invocation with only --version or
    --help is not a daemon and is skipped."""
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
            if flags and set(flags) <= _INFO_ONLY:
                continue  # `kube-apiserver --version` prints and exits: not a running daemon
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


@rule(
    "apiserver-insecure-flags",
    "kube-apiserver runs with --anonymous-auth=false, no AlwaysAllow authorization, no insecure port or bind address, and not --allow-privileged=true.",
    CRITICAL,
    MANDATORY,
    "Fix the flags in components/templates/kube-apiserver.service: --anonymous-auth=false --authorization-mode=Node,RBAC, no --insecure-port/--insecure-bind-address.",
    settings={"allowPrivileged": flag("Accept --allow-privileged=true.", False)},
    tags=HOST_TAGS,
)
def validate_apiserver_flags(args: Any, report: Report, cfg: Config) -> None:
    """kube-apiserver runs with authentication and authorization, and no insecure port."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    for key, value in step_texts(args.props):
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


@rule(
    "etcd-plaintext-urls",
    "etcd client (and peer) URLs use https on every non-loopback address.",
    CRITICAL,
    MANDATORY,
    "Use https:// client URLs with --client-cert-auth=true and the etcd CA; keep http only on 127.0.0.1.",
    settings={"includePeerUrls": flag("Also check --listen-peer-urls / --initial-advertise-peer-urls.", True)},
    tags=HOST_TAGS,
)
def validate_etcd_urls(args: Any, report: Report, cfg: Config) -> None:
    """etcd serves clients (and peers) over TLS on every non-loopback address."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    for key, value in step_texts(args.props):
        for flag_name, url in plaintext_urls(value, cfg.get("includePeerUrls", True)):
            report(
                f"{host_ref(args)}: Its {key} configures etcd with {flag_name} {url}, plaintext http on a non-loopback address, so anyone on the network reads and writes "
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


KUBELET_CONFIG_PATHS = ["/etc/vm-platform/kubelet.yaml"]


def kubelet_config_problems(doc: Any) -> Iterator[str]:
    """What lets a KubeletConfiguration serve unauthenticated or unauthorized requests. Only the
    secure value of each field passes; a field left out keeps the kubelet's default for a config
    file (anonymous off, Webhook authorization, read-only port 0), so a merge that drops a key
    does not open the kubelet, and a merge that sets one is judged like any other value."""
    port = get(doc, "readOnlyPort")
    if port is not None and number(port) != 0:
        if number(port) is not None:
            yield f"readOnlyPort is {port}, an unauthenticated port. Set readOnlyPort: 0"
        else:
            yield f"readOnlyPort is {show(port)}, not a port number, and only 0 keeps the unauthenticated port closed. Set readOnlyPort: 0"
    anonymous = get(doc, "authentication", "anonymous", "enabled")
    if anonymous is True:
        yield "authentication.anonymous.enabled is true. Set it to false"
    elif anonymous is not None and anonymous is not False:
        yield f"authentication.anonymous.enabled is {show(anonymous)}, not false. Set it to false"
    mode = get(doc, "authorization", "mode")
    if mode == "AlwaysAllow":
        yield "authorization.mode is AlwaysAllow. Set it to Webhook"
    elif mode is not None and mode != "Webhook":
        yield f"authorization.mode is {show(mode)}, not Webhook (the mode that asks the API server about each request). Set it to Webhook"


def _writes_kubelet_config(props: Any, paths: list[str]) -> bool:
    """Whether the step's command text names a kubelet config file as what it writes (the
    install-file step: `DEST=<path> ... install-file.sh` with the content on stdin)."""
    return any(path in value for _, value in step_texts(props, ("create", "update")) for path in paths)


def _kubelet_configs(script: str, whole: bool) -> Iterator[Any]:
    """The KubeletConfiguration documents in a text; with `whole` (the text is the content of a
    kubelet config file) every mapping document, with or without `kind`."""
    if not whole and "KubeletConfiguration" not in script:
        return
    import yaml  # only for the few texts that hold a kubelet config

    try:
        docs = list(yaml.safe_load_all(script))
    except yaml.YAMLError:
        return
    yield from (d for d in docs if isinstance(d, dict) and (whole or d.get("kind") == "KubeletConfiguration"))


@rule(
    "kubelet-insecure-config",
    "The kubelet allows no anonymous requests, does not authorize with AlwaysAllow and keeps the read-only port closed.",
    CRITICAL,
    MANDATORY,
    "In the KubeletConfiguration: authentication.anonymous.enabled: false, authorization.mode: Webhook, readOnlyPort: 0; no --allow-privileged.",
    settings={
        "kubeletConfigPaths": strings(
            "Kubelet config files: the stdin of a step whose command names one is judged as a KubeletConfiguration, with or without kind.", KUBELET_CONFIG_PATHS
        )
    },
    tags=HOST_TAGS,
)
def validate_kubelet(args: Any, report: Report, cfg: Config) -> None:
    """The kubelet has no anonymous access, no AlwaysAllow authorization and no read-only port."""
    if args.resource_type not in (COMMAND, LOCAL_COMMAND):
        return
    config_file = _writes_kubelet_config(args.props, cfg.get("kubeletConfigPaths", KUBELET_CONFIG_PATHS))
    for key, value in step_texts(args.props):
        for flags in invocations(value, "kubelet"):
            for problem in kubelet_flag_problems(flags):
                report(f"{host_ref(args)}: The kubelet command line in its {key} is insecure: {problem}.")
        for doc in _kubelet_configs(value, whole=config_file and key == "stdin"):
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


@rule(
    "registry-plain-http",
    "The private registry is served and pulled over https unless the stack allows plain http.",
    HIGH,
    MANDATORY,
    "Set registry.tls: true (and registry.allowPlainHttp: false) in the stack config, or allow it for this stack with allowPlainHttpRegistry.",
    settings={"allowPlainHttpRegistry": flag("This stack may use a plain-http registry (dev only).", False)},
    tags=HOST_TAGS,
)
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


RULES = declared(__name__)

__all__ = ["RULES", "invocations", "kubelet_config_problems", "plaintext_urls"]
