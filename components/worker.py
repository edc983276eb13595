"""A worker host: container runtime (containerd, trusting the private registry and taking the
pod-sandbox image from it), flanneld, the node's CNI config, kubelet and kube-proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import yaml

from . import remote as r
from .binaries import WORKER_BINARIES, install_binaries, version_stamp
from .control_plane import ETCD_PREFIX, ControlPlane, hosts_lines, pod_network_config
from .settings import Host, Settings

WORKER_SCRIPTS = (
    "hosts-file.sh", "prereqs.sh", "install-binary.sh", "install-file.sh", "remove-file.sh",
    "restart-service.sh", "stop-service.sh", "pki-lib.sh", "node-keys.sh", "node-certs.sh",
    "remove-pki.sh", "cni-config.sh", "worker-reset.sh",
)  # fmt: skip
CNI_CONF = "/etc/cni/net.d/10-vm-platform.conflist"


@dataclass(frozen=True)
class WorkerNodeArgs:
    settings: Settings
    """The validated stack settings."""
    host: Host
    """The worker host."""
    control_plane: ControlPlane
    """The control plane: signs this node's certificates and runs its readiness check."""
    registry_credentials: pulumi.Output[tuple[str, str]] | None = None
    """(user, password) for pulls from the private registry, when it requires auth."""


def kubelet_config(s: Settings) -> str:
    cfg: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": "/etc/vm-platform/pki/ca.crt"},
        },
        "authorization": {"mode": "Webhook"},
        "readOnlyPort": 0,
        "tlsCertFile": "/etc/vm-platform/pki/kubelet.crt",
        "tlsPrivateKeyFile": "/etc/vm-platform/pki/kubelet.key",
        "clusterDomain": s.network.cluster_domain,
        "clusterDNS": [s.network.cluster_dns],
        "cgroupDriver": s.runtime.cgroup_driver,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "maxOpenFiles": s.runtime.max_open_files,
        "rotateCertificates": False,
        "serializeImagePulls": False,
    }
    cfg.update(s.kubelet)  # per-stack overrides (e.g. failCgroupV1 on cgroup-v1 hosts)
    return yaml.safe_dump(cfg, sort_keys=True)


def kube_proxy_config(s: Settings, host: Host) -> str:
    cfg = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": "/etc/vm-platform/kube-proxy.kubeconfig"},
        "mode": "iptables",
        "clusterCIDR": s.network.pod_cidr,
        "hostnameOverride": host.name,
        "bindAddress": host.address,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # Leave the machine-wide conntrack sysctls alone (read-only inside containers).
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
    return yaml.safe_dump(cfg, sort_keys=True)


def containerd_config(s: Settings, credentials: tuple[str, str] | None) -> str:
    text = r.render(
        "containerd.toml",
        sandbox_image=s.image_ref(s.pause_image),
        restrict_oom_score_adj=str(s.runtime.restrict_oom_score_adj).lower(),
        snapshotter=s.runtime.snapshotter,
        systemd_cgroup=str(s.runtime.cgroup_driver == "systemd").lower(),
        cni_bin_dir=s.runtime.cni_bin_dir,
    )
    if credentials:
        user, password = credentials
        text += f'\n  [plugins."io.containerd.grpc.v1.cri".registry.configs."{s.registry_host}".auth]\n    username = "{user}"\n    password = "{password}"\n'
    return text


def registry_hosts(s: Settings) -> str:
    tls = s.registry.tls
    return r.render(
        "registry-hosts.toml",
        registry=s.registry_host,
        scheme="https" if tls else "http",
        ca_line='ca = "/etc/vm-platform/pki/ca.crt"' if tls else "# plain http: allowed by this stack (registry.allowPlainHttp)",
    )


def node_ready_check(api_server: str, node: str) -> str:
    """Health check for a kubelet restart: the kubelet answers locally and the API server reports
    this node Ready (asked with the node's own certificate, which the Node authorizer allows)."""
    pki = "/etc/vm-platform/pki"
    return (
        "curl -fs http://127.0.0.1:10248/healthz >/dev/null && "
        f"curl -fs --cacert {pki}/ca.crt --cert {pki}/kubelet.crt --key {pki}/kubelet.key {api_server}/api/v1/nodes/{node} "
        '| tr -d \' \\n\' | grep -q \'"type":"Ready","status":"True"\''
    )


class WorkerNode(pulumi.ComponentResource):
    """Turns one worker host into a Kubernetes node that reports Ready.

    Outputs:
        ready: the readiness step (run on the control plane); stdout is the kubelet version.
        node_name: the node's name in Kubernetes.
        restarts: unit name -> restart step (stdout: the unit's start time).
    """

    def __init__(self, name: str, args: WorkerNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:cluster:WorkerNode", name, None, opts)
        s, host, cp = args.settings, args.host, args.control_plane
        t = r.connect(s, host)
        p = name
        self.node_name = host.name

        scripts = r.HostScripts(f"{p}-scripts", (t, WORKER_SCRIPTS), pulumi.ResourceOptions(parent=self))
        base = [scripts.installed]
        hosts_file = r.step(
            f"{p}-hosts-file", t, "hosts-file.sh", parent=self, stdin=hosts_lines(s), delete=("hosts-file.sh", {"ACTION": "remove"}), depends_on=base
        )
        prereqs = r.step(f"{p}-prereqs", t, "prereqs.sh", parent=self, env={"PACKAGES": " ".join(s.packages.worker)}, depends_on=[*base, hosts_file])
        bins = install_binaries(p, s, t, WORKER_BINARIES, parent=self, depends_on=[prereqs])

        # Certificates: keys made here, CSRs signed on the control plane, certs installed here.
        keys = r.step(f"{p}-keys", t, "node-keys.sh", parent=self, env={"NODE_NAME": host.name}, delete=("remove-pki.sh", {}), depends_on=[prereqs])
        signed = cp.sign_node(f"{p}-sign", host.name, host.address, keys.stdout, parent=self)
        certs_text = pulumi.Output.concat(signed.stdout, "\n", cp.ca_bundle, "\n")
        certs = r.step(f"{p}-certs", t, "node-certs.sh", parent=self, env={"API_SERVER": cp.api_server_endpoint}, stdin=certs_text, depends_on=[keys])
        certs_hash = certs_text.apply(r.sha256)

        # Container runtime.
        creds = args.registry_credentials
        if creds is not None:
            ctd_text: pulumi.Input[str] = creds.apply(lambda c: containerd_config(s, c))
        else:
            ctd_text = containerd_config(s, None)
        ctd_conf = r.install_file(
            f"{p}-containerd-config", t, "/etc/containerd/config.toml", ctd_text, parent=self, mode="0600", secret=creds is not None, depends_on=[prereqs]
        )
        hosts_text = registry_hosts(s)
        reg_hosts = r.install_file(
            f"{p}-containerd-registry", t, f"/etc/containerd/certs.d/{s.registry_host}/hosts.toml", hosts_text, parent=self, depends_on=[prereqs]
        )
        ctd_hash = pulumi.Output.from_input(ctd_text).apply(r.sha256)
        containerd = r.restart(
            f"{p}-containerd-restart", t, "containerd", [ctd_hash, r.sha256(hosts_text)], parent=self,
            health="test -S /run/containerd/containerd.sock", depends_on=[ctd_conf, reg_hosts, certs],
        )  # fmt: skip

        # Pod network: flanneld leases this node's subnet from etcd; the CNI config follows it.
        fl_text = r.render("flanneld.service", etcd_address=s.control_plane.address, etcd_prefix=ETCD_PREFIX, address=host.address)
        fl_unit = r.unit_file(f"{p}-flanneld-unit", t, "flanneld", fl_text, parent=self, depends_on=[certs, bins["flanneld"]])
        flanneld = r.restart(
            f"{p}-flanneld-restart", t, "flanneld",
            [r.sha256(fl_text), version_stamp(s, "flanneld"), certs_hash, r.sha256(pod_network_config(s))], parent=self,
            health="test -s /run/flannel/subnet.env", depends_on=[fl_unit, cp.pod_network],
        )  # fmt: skip
        cni = r.step(
            f"{p}-cni-config", t, "cni-config.sh", parent=self, env={"CNI_CONF": CNI_CONF}, triggers=[flanneld.id],
            delete=("remove-file.sh", {"DEST": CNI_CONF}), depends_on=[flanneld],
        )  # fmt: skip

        # On destroy, after kubelet stops and before the runtime's config goes: remove what pods left.
        reset = r.step(f"{p}-runtime-reset", t, "install-file.sh", parent=self, env={"DEST": "/var/lib/vm-platform/runtime-reset", "MODE": "0644"},
                       stdin="managed by vm-platform\n", delete=("worker-reset.sh", {}), depends_on=[containerd, cni])  # fmt: skip

        # kubelet
        kl_conf_text = kubelet_config(s)
        kl_conf = r.install_file(f"{p}-kubelet-config", t, "/etc/vm-platform/kubelet.yaml", kl_conf_text, parent=self, depends_on=[prereqs])
        kl_text = r.render("kubelet.service", name=host.name, address=host.address)
        kl_unit = r.unit_file(f"{p}-kubelet-unit", t, "kubelet", kl_text, parent=self, depends_on=[bins["kubelet"], reset])
        kubelet = r.restart(
            f"{p}-kubelet-restart", t, "kubelet", [r.sha256(kl_conf_text), r.sha256(kl_text), version_stamp(s, "kubelet"), certs_hash],
            parent=self, health=node_ready_check(cp.api_server_endpoint, host.name), timeout=180,
            depends_on=[kl_conf, kl_unit, containerd, cni, cp.api_server_ready],
        )  # fmt: skip

        # kube-proxy
        kp_conf_text = kube_proxy_config(s, host)
        kp_conf = r.install_file(f"{p}-kube-proxy-config", t, "/etc/vm-platform/kube-proxy.yaml", kp_conf_text, parent=self, depends_on=[prereqs])
        kp_text = r.render("kube-proxy.service")
        kp_unit = r.unit_file(f"{p}-kube-proxy-unit", t, "kube-proxy", kp_text, parent=self, depends_on=[bins["kube-proxy"], reset])
        kube_proxy = r.restart(
            f"{p}-kube-proxy-restart", t, "kube-proxy", [r.sha256(kp_conf_text), r.sha256(kp_text), version_stamp(s, "kube-proxy"), certs_hash],
            parent=self, health="curl -fs http://127.0.0.1:10256/healthz", depends_on=[kp_conf, kp_unit, certs, cp.api_server_ready],
        )  # fmt: skip

        self.restarts = {"containerd": containerd, "flanneld": flanneld, "kubelet": kubelet, "kube-proxy": kube_proxy}
        # The kubelet restart already waits for Ready; this confirms it from the control plane's
        # side once (its stdout is the kubelet version the API server reports).
        self.ready = r.step(
            f"{p}-ready", cp.target, "wait-node-ready.sh", parent=self, env={"NODE_NAME": host.name, "TIMEOUT": 300},
            depends_on=[kubelet, kube_proxy],
        )  # fmt: skip
        self.register_outputs({"node_name": self.node_name, "ready": self.ready.stdout})
