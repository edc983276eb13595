"""Host bootstrap rules: SSH connections, secret logging, control-plane/kubelet flags, registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi_policy import Secret
from rules.daemons import invocations

from tests.policy.cases import Case, assert_case, case
from tests.policy.fakes import COMMAND, CONFIGMAP, COPY, DELETE, UNKNOWN, command, edit

LOCAL = "command:local:Command"
CMD = command()

APISERVER_UNIT = """[Service]
ExecStart=/usr/local/bin/kube-apiserver \\
  --advertise-address=192.168.226.131 \\
  --secure-port=6443 \\
  --anonymous-auth=false \\
  --authorization-mode=Node,RBAC \\
  --allow-privileged=false \\
  --etcd-servers=https://127.0.0.1:2379
Restart=always
"""
ETCD_UNIT = """[Service]
ExecStart=/usr/local/bin/etcd \\
  --listen-client-urls=https://192.168.226.131:2379,https://127.0.0.1:2379 \\
  --advertise-client-urls=https://192.168.226.131:2379 \\
  --client-cert-auth=true \\
  --listen-peer-urls=http://127.0.0.1:2380 \\
  --initial-advertise-peer-urls=http://127.0.0.1:2380
"""
KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
authorization:
  mode: Webhook
readOnlyPort: 0
"""
KUBELET_UNIT = "ExecStart=/usr/local/bin/kubelet \\\n  --config=/etc/vm-platform/kubelet.yaml \\\n  --kubeconfig=/etc/vm-platform/kubelet.kubeconfig\n"
HOSTS_TOML = 'server = "https://192.168.227.10:5000"\n\n[host."https://192.168.227.10:5000"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/vm-platform/pki/ca.crt"\n'
REGISTRY_TLS = 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: ":5000"\n  tls:\n    certificate: /etc/r.crt\n    key: /etc/r.key\n'
INSTALL = "VMP_SCRIPT=2bdd172bdd91 DEST=/etc/systemd/system/x.service MODE=0644 /usr/local/lib/vm-platform/install-file.sh"
KUBELET_INSTALL = "VMP_SCRIPT=2bdd172bdd91 DEST=/etc/vm-platform/kubelet.yaml MODE=0644 /usr/local/lib/vm-platform/install-file.sh"
# What a shallow merge of the override authentication.webhook made of the config (issue 8):
# anonymous is gone, so the kubelet's config-file default (false) applies.
KUBELET_SHALLOW_MERGED = KUBELET_CONFIG.replace("  anonymous:\n    enabled: false\n", "").replace("webhook:\n    enabled: true", "webhook:\n    cacheTTL: 1m")
HTPASSWD = "VMP_SCRIPT=add505c9e6ab USERNAME=platform DEST=/etc/vm-platform/registry/htpasswd /usr/local/lib/vm-platform/registry-htpasswd.sh"
READ_KUBECONFIG = "VMP_SCRIPT=3879fbc420aa API_SERVER=https://192.168.226.131:6443 /usr/local/lib/vm-platform/read-kubeconfig.sh"
DRAIN = "KUBECONFIG=/etc/vm-platform/admin.kubeconfig kubectl drain node-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s"
BUNDLE = "set -euo pipefail\ncat > /usr/local/lib/vm-platform/pki-lib.sh.tmp <<'EOF'\n    client-key-data: $(b64 \"$PKI/$cert.key\")\nEOF\n"
CONTAINERD_AUTH = '[plugins."io.containerd.grpc.v1.cri".registry.configs."192.168.227.10:5000".auth]\n    username = "platform"\n    password = "s3cret-pw"\n'
PEM = (Path(__file__).parent / "fixtures" / "fake_rsa_key.pem").read_text()  # truncated, not a usable key


def unit(text: str, **changes: object) -> dict:
    return edit(command(INSTALL, stdin=text), **changes)


CASES: list[Case] = [
    # ssh-host-key-pinned
    case("hostkey-ok", "ssh-host-key-pinned", COMMAND, CMD),
    case("hostkey-missing", "ssh-host-key-pinned", COMMAND, edit(CMD, **{"connection.hostKey": DELETE}), "connection has no hostKey"),
    case("hostkey-copy", "ssh-host-key-pinned", COPY, {"connection": {"host": "h", "privateKey": "k"}, "remotePath": "/x"}, "connection has no hostKey"),
    case(
        "hostkey-proxy",
        "ssh-host-key-pinned",
        COMMAND,
        edit(CMD, **{"connection.proxy": {"host": "jump", "privateKey": "k"}}),
        "connection.proxy has no hostKey",
    ),
    case("hostkey-dsa", "ssh-host-key-pinned", COMMAND, edit(CMD, **{"connection.hostKey": "ssh-dss AAAAB3"}), "of type ssh-dss"),
    case(
        "hostkey-only-ed25519",
        "ssh-host-key-pinned",
        COMMAND,
        edit(CMD, **{"connection.hostKey": "ssh-rsa AAAAB3"}),
        "of type ssh-rsa",
        config={"allowedKeyTypes": ["ssh-ed25519"]},
    ),
    case("hostkey-ignore-local", "ssh-host-key-pinned", LOCAL, {"create": "echo hi"}),
    case("hostkey-unknown", "ssh-host-key-pinned", COMMAND, edit(CMD, **{"connection.hostKey": UNKNOWN})),
    # ssh-key-auth
    case("keyauth-ok", "ssh-key-auth", COMMAND, CMD),
    case("keyauth-password", "ssh-key-auth", COMMAND, edit(CMD, **{"connection.password": "hunter2"}), "logs in with a password"),
    case("keyauth-no-key", "ssh-key-auth", COMMAND, edit(CMD, **{"connection.privateKey": DELETE}), "sets no privateKey"),
    case("keyauth-agent", "ssh-key-auth", COMMAND, edit(CMD, **{"connection.privateKey": DELETE, "connection.agentSocketPath": "/run/ssh-agent.sock"})),
    case(
        "keyauth-agent-forbidden",
        "ssh-key-auth",
        COMMAND,
        edit(CMD, **{"connection.privateKey": DELETE, "connection.agentSocketPath": "/s"}),
        "sets no privateKey",
        config={"allowAgent": False},
    ),
    case("keyauth-ignore-configmap", "ssh-key-auth", CONFIGMAP, {"data": {"password": "x"}}),
    case("keyauth-unknown-key", "ssh-key-auth", COMMAND, edit(CMD, **{"connection.privateKey": UNKNOWN})),
    # secret-commands-no-logging
    case("secretlog-plain-ok", "secret-commands-no-logging", COMMAND, CMD),
    case("secretlog-htpasswd-off", "secret-commands-no-logging", COMMAND, command(HTPASSWD, stdin="pw", logging="none")),
    case("secretlog-htpasswd", "secret-commands-no-logging", COMMAND, command(HTPASSWD, stdin="pw"), "mentions htpasswd"),
    case("secretlog-default-logging", "secret-commands-no-logging", COMMAND, command(READ_KUBECONFIG, logging=None), "stdoutAndStderr (the default)"),
    case("secretlog-drain-ok", "secret-commands-no-logging", COMMAND, command(DRAIN, logging=None)),
    case("secretlog-containerd-auth", "secret-commands-no-logging", COMMAND, command(INSTALL, stdin=CONTAINERD_AUTH), "stdin contains key material"),
    case("secretlog-pem", "secret-commands-no-logging", COMMAND, command(INSTALL, stdin=PEM), "stdin contains key material"),
    case("secretlog-bundle-ok", "secret-commands-no-logging", COMMAND, command("bash -s", stdin=BUNDLE, logging=None)),
    case(
        "secretlog-bundle-printf-ok",
        "secret-commands-no-logging",
        COMMAND,
        command("bash -s", stdin='printf \'{"auths":{"%s":{"auth":"%s"}}}\' "$R" "$A"', logging=None),
    ),
    case(
        "secretlog-docker-config",
        "secret-commands-no-logging",
        COMMAND,
        command(INSTALL, stdin='{"auths": {"r:5000": {"auth": "cGxhdGZvcm06czNjcmV0"}}}'),
        "stdin contains key material",
    ),
    case("secretlog-secret-outputs", "secret-commands-no-logging", COMMAND, CMD, "marks stdout/stderr as secret", secret_outputs=("stdout", "stderr")),
    case("secretlog-secret-stdin", "secret-commands-no-logging", COMMAND, command(INSTALL, stdin=Secret("pw")), "stdin is secret"),  # type: ignore[arg-type]
    case("secretlog-password", "secret-commands-no-logging", COMMAND, edit(CMD, **{"connection.password": "pw"}), "connection.password is set"),
    case("secretlog-local", "secret-commands-no-logging", LOCAL, {"create": "htpasswd -Bbn u p", "logging": "stdout"}, "mentions htpasswd"),
    case("secretlog-patterns-override", "secret-commands-no-logging", COMMAND, command(HTPASSWD, stdin="pw"), config={"secretCommandPatterns": []}),
    case("secretlog-ignore-copy", "secret-commands-no-logging", COPY, {"connection": {}, "remotePath": "/etc/htpasswd"}),
    case("secretlog-unknown-stdin", "secret-commands-no-logging", COMMAND, command(INSTALL, stdin=UNKNOWN)),
    case("secretlog-unknown-logging", "secret-commands-no-logging", COMMAND, command(HTPASSWD, logging=UNKNOWN)),
    case("secretlog-unknown-create", "secret-commands-no-logging", COMMAND, command(UNKNOWN)),
    # apiserver-insecure-flags
    case("apiserver-ok", "apiserver-insecure-flags", COMMAND, unit(APISERVER_UNIT)),
    case(
        "apiserver-anonymous",
        "apiserver-insecure-flags",
        COMMAND,
        unit(APISERVER_UNIT.replace("anonymous-auth=false", "anonymous-auth=true")),
        "anonymous requests are allowed",
    ),
    case(
        "apiserver-anonymous-missing",
        "apiserver-insecure-flags",
        COMMAND,
        unit(APISERVER_UNIT.replace("  --anonymous-auth=false \\\n", "")),
        "defaults to true",
    ),
    case("apiserver-alwaysallow", "apiserver-insecure-flags", COMMAND, unit(APISERVER_UNIT.replace("Node,RBAC", "AlwaysAllow")), "includes AlwaysAllow"),
    case(
        "apiserver-authz-missing",
        "apiserver-insecure-flags",
        COMMAND,
        unit(APISERVER_UNIT.replace("  --authorization-mode=Node,RBAC \\\n", "")),
        "the default when unset",
    ),
    case(
        "apiserver-insecure-port",
        "apiserver-insecure-flags",
        COMMAND,
        unit(APISERVER_UNIT.replace("--secure-port=6443", "--insecure-port=8080 --insecure-bind-address=0.0.0.0")),
        "--insecure-port=8080",
        "--insecure-bind-address",
    ),
    case("apiserver-insecure-port-zero", "apiserver-insecure-flags", COMMAND, unit(APISERVER_UNIT.replace("--secure-port=6443", "--insecure-port=0"))),
    case(
        "apiserver-allow-privileged",
        "apiserver-insecure-flags",
        COMMAND,
        unit(APISERVER_UNIT.replace("allow-privileged=false", "allow-privileged=true")),
        "--allow-privileged=true",
    ),
    case(
        "apiserver-allow-privileged-ok",
        "apiserver-insecure-flags",
        COMMAND,
        unit(APISERVER_UNIT.replace("allow-privileged=false", "allow-privileged=true")),
        config={"allowPrivileged": True},
    ),
    case(
        "apiserver-cmdline",
        "apiserver-insecure-flags",
        COMMAND,
        command("kube-apiserver --anonymous-auth false --authorization-mode AlwaysAllow && echo ok"),
        "includes AlwaysAllow",
    ),
    case(
        "apiserver-restart-ignored",
        "apiserver-insecure-flags",
        COMMAND,
        command("UNIT=kube-apiserver HEALTH='curl -fs https://127.0.0.1:6443/readyz' /usr/local/lib/vm-platform/restart-service.sh"),
    ),
    case(
        "apiserver-download-ignored",
        "apiserver-insecure-flags",
        COMMAND,
        command("NAME=kube-apiserver URL=https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver /usr/local/lib/vm-platform/install-binary.sh"),
    ),
    case("apiserver-journalctl-ignored", "apiserver-insecure-flags", COMMAND, command("journalctl -u kube-apiserver --since today")),
    case("apiserver-ignore-configmap", "apiserver-insecure-flags", CONFIGMAP, {"data": {"unit": APISERVER_UNIT.replace("Node,RBAC", "AlwaysAllow")}}),
    case("apiserver-unknown-stdin", "apiserver-insecure-flags", COMMAND, command(INSTALL, stdin=UNKNOWN)),
    # etcd-plaintext-urls
    case("etcd-ok", "etcd-plaintext-urls", COMMAND, unit(ETCD_UNIT)),
    case(
        "etcd-client-http",
        "etcd-plaintext-urls",
        COMMAND,
        unit(ETCD_UNIT.replace("https://192.168.226.131:2379,", "http://192.168.226.131:2379,")),
        "listen-client-urls http://192.168.226.131:2379",
    ),
    case(
        "etcd-advertise-http",
        "etcd-plaintext-urls",
        COMMAND,
        command("ETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.5:2379 etcd"),
        "ADVERTISE_CLIENT_URLS http://10.0.0.5:2379",
    ),
    case("etcd-yaml", "etcd-plaintext-urls", COMMAND, command(INSTALL, stdin="listen-client-urls: http://0.0.0.0:2379\n"), "http://0.0.0.0:2379"),
    case(
        "etcd-peer",
        "etcd-plaintext-urls",
        COMMAND,
        unit(ETCD_UNIT.replace("listen-peer-urls=http://127.0.0.1", "listen-peer-urls=http://192.168.226.131")),
        "listen-peer-urls",
    ),
    case(
        "etcd-peer-not-checked",
        "etcd-plaintext-urls",
        COMMAND,
        unit(ETCD_UNIT.replace("listen-peer-urls=http://127.0.0.1", "listen-peer-urls=http://192.168.226.131")),
        config={"includePeerUrls": False},
    ),
    case("etcd-ignore-configmap", "etcd-plaintext-urls", CONFIGMAP, {"data": {"x": "--listen-client-urls=http://10.0.0.1:2379"}}),
    case("etcd-unknown", "etcd-plaintext-urls", COMMAND, command(UNKNOWN, stdin=UNKNOWN)),
    # kubelet-insecure-config
    case("kubelet-ok", "kubelet-insecure-config", COMMAND, unit(KUBELET_CONFIG)),
    case("kubelet-unit-ok", "kubelet-insecure-config", COMMAND, unit(KUBELET_UNIT)),
    case(
        "kubelet-readonly", "kubelet-insecure-config", COMMAND, unit(KUBELET_CONFIG.replace("readOnlyPort: 0", "readOnlyPort: 10255")), "readOnlyPort is 10255"
    ),
    case("kubelet-anonymous", "kubelet-insecure-config", COMMAND, unit(KUBELET_CONFIG.replace("enabled: false", "enabled: true")), "anonymous.enabled is true"),
    case("kubelet-alwaysallow", "kubelet-insecure-config", COMMAND, unit(KUBELET_CONFIG.replace("mode: Webhook", "mode: AlwaysAllow")), "mode is AlwaysAllow"),
    case(
        "kubelet-flags-without-config",
        "kubelet-insecure-config",
        COMMAND,
        command("/usr/bin/kubelet --kubeconfig=/k --allow-privileged=true"),
        "--anonymous-auth",
        "AlwaysAllow",
        "read-only port 10255",
        "--allow-privileged=true",
    ),
    case("kubelet-description-ignored", "kubelet-insecure-config", COMMAND, unit("[Unit]\nDescription=Kubernetes kubelet (vm-platform)\n" + KUBELET_UNIT)),
    case("kubelet-ignore-configmap", "kubelet-insecure-config", CONFIGMAP, {"data": {"k": KUBELET_CONFIG.replace("readOnlyPort: 0", "readOnlyPort: 10255")}}),
    case("kubelet-unknown", "kubelet-insecure-config", COMMAND, command(INSTALL, stdin=UNKNOWN)),
    # kubelet-insecure-config: the kubelet's config file, as the install-file step writes it (with overrides merged in)
    case("kubelet-file-ok", "kubelet-insecure-config", COMMAND, command(KUBELET_INSTALL, stdin=KUBELET_CONFIG)),
    case("kubelet-file-merge-dropped-anonymous", "kubelet-insecure-config", COMMAND, command(KUBELET_INSTALL, stdin=KUBELET_SHALLOW_MERGED)),
    case(
        "kubelet-file-anonymous",
        "kubelet-insecure-config",
        COMMAND,
        command(KUBELET_INSTALL, stdin=KUBELET_CONFIG.replace("enabled: false", "enabled: true")),
        "The KubeletConfiguration in its stdin is insecure: authentication.anonymous.enabled is true",
    ),
    case(
        "kubelet-file-alwaysallow",
        "kubelet-insecure-config",
        COMMAND,
        command(KUBELET_INSTALL, stdin=KUBELET_CONFIG.replace("mode: Webhook", "mode: AlwaysAllow")),
        "authorization.mode is AlwaysAllow",
    ),
    case(
        "kubelet-file-readonly-port",
        "kubelet-insecure-config",
        COMMAND,
        command(KUBELET_INSTALL, stdin=KUBELET_CONFIG.replace("readOnlyPort: 0", "readOnlyPort: '10255'")),
        "readOnlyPort is 10255",
    ),
    case(
        "kubelet-file-all-three-without-kind",
        "kubelet-insecure-config",
        COMMAND,
        command(KUBELET_INSTALL, stdin='{"authentication": {"anonymous": {"enabled": true}}, "authorization": {"mode": "AlwaysAllow"}, "readOnlyPort": 10255}'),
        "readOnlyPort is 10255",
        "anonymous.enabled is true",
        "mode is AlwaysAllow",
    ),
    case(
        "kubelet-file-values-it-does-not-know",
        "kubelet-insecure-config",
        COMMAND,
        command(
            KUBELET_INSTALL,
            stdin=KUBELET_CONFIG.replace("enabled: false", 'enabled: "no"')
            .replace("mode: Webhook", "mode: Node")
            .replace("readOnlyPort: 0", "readOnlyPort: off-ish"),
        ),
        "readOnlyPort is 'off-ish', not a port number",
        "authentication.anonymous.enabled is 'no', not false",
        "authorization.mode is 'Node', not Webhook",
    ),
    case("kubelet-file-unknown", "kubelet-insecure-config", COMMAND, command(KUBELET_INSTALL, stdin=UNKNOWN)),
    case("kubelet-file-not-yaml", "kubelet-insecure-config", COMMAND, command(KUBELET_INSTALL, stdin="authentication: [unclosed\n  - {")),
    case(
        "kubelet-file-elsewhere-needs-its-path",
        "kubelet-insecure-config",
        COMMAND,
        command(KUBELET_INSTALL.replace("/etc/vm-platform/kubelet.yaml", "/var/lib/kubelet/config.yaml"), stdin="authentication: {anonymous: {enabled: true}}"),
    ),
    case(
        "kubelet-file-elsewhere-configured",
        "kubelet-insecure-config",
        COMMAND,
        command(KUBELET_INSTALL.replace("/etc/vm-platform/kubelet.yaml", "/var/lib/kubelet/config.yaml"), stdin="authentication: {anonymous: {enabled: true}}"),
        "anonymous.enabled is true",
        config={"kubeletConfigPaths": ["/var/lib/kubelet/config.yaml"]},
    ),
    # registry-plain-http
    case("plainhttp-https-ok", "registry-plain-http", COMMAND, unit(HOSTS_TOML)),
    case("plainhttp-hosts-toml", "registry-plain-http", COMMAND, unit(HOSTS_TOML.replace("https", "http")), "pulls over plain http"),
    case("plainhttp-registry-tls-ok", "registry-plain-http", COMMAND, unit(REGISTRY_TLS)),
    case("plainhttp-registry-no-tls", "registry-plain-http", COMMAND, unit(REGISTRY_TLS.split("  tls:")[0]), "has no tls block"),
    case("plainhttp-allowed", "registry-plain-http", COMMAND, unit(HOSTS_TOML.replace("https", "http")), config={"allowPlainHttpRegistry": True}),
    case("plainhttp-ignore-configmap", "registry-plain-http", CONFIGMAP, {"data": {"hosts.toml": HOSTS_TOML.replace("https", "http")}}),
    case("plainhttp-unknown", "registry-plain-http", COMMAND, command(INSTALL, stdin=UNKNOWN)),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule(c: Case) -> None:
    assert_case(c)


def test_invocations_reads_both_flag_forms_and_stops_at_shell_operators() -> None:
    flags = list(invocations("x && /usr/bin/kube-apiserver --a=1 --b 2 --c ; --d=4", "kube-apiserver"))
    assert flags == [{"a": "1", "b": "2", "c": "true"}]
    assert list(invocations('issue apiserver ca server "$sans" "CN=kube-apiserver"', "kube-apiserver")) == []


def test_a_version_query_is_not_a_daemon_but_a_server_with_it_still_is() -> None:
    assert list(invocations("installed=$(/usr/local/bin/kube-apiserver --version | awk '{print $2}')", "kube-apiserver")) == []
    assert list(invocations("kube-apiserver --version --anonymous-auth=true", "kube-apiserver")) == [{"version": "true", "anonymous-auth": "true"}]
