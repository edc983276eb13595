"""A worker host: container runtime (containerd, trusting the private registry and taking the
pod-sandbox image from it), flanneld, the node's CNI config, kubelet and kube-proxy."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml

from . import remote as r
from .binaries import FLANNEL_BINARIES, KUBERNETES_WORKER_BINARIES, NETPOL_BINARIES, install_binaries
from .control_plane import ETCD_PREFIX, ControlPlane, certificate_expiry, hosts_lines, without_expiry
from .settings import Host, Settings
from .steps import CommandStep, HostSteps

CNI_CONF = "/etc/cni/net.d/10-vm-platform.conflist"
UPGRADE_TIMEOUT = 600  # s: a drain waits for PodDisruptionBudgets (a Eureka peer's start-up)


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
    upgrade_after: tuple[pulumi.Resource, ...] = ()
    """What this worker's Kubernetes upgrade waits for: the previous worker's (one at a time)."""


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
        # Heartbeats often enough for nodeLoss.detectSeconds (its defaults: Kubernetes' own).
        "nodeLeaseDurationSeconds": s.node_loss.lease_seconds,
        "nodeStatusUpdateFrequency": f"{s.node_loss.status_seconds}s",
    }
    # Per-stack overrides (e.g. failCgroupV1 on cgroup-v1 hosts), merged key by key: overriding
    # authentication.webhook must not drop authentication.anonymous.
    return yaml.safe_dump(deep_merge(cfg, s.kubelet), sort_keys=True)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: mappings merge recursively, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


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
        table = f'plugins."io.containerd.grpc.v1.cri".registry.configs.{r.toml_string(s.registry_host)}.auth'
        text += f"\n  [{table}]\n    username = {r.toml_string(user)}\n    password = {r.toml_string(password)}\n"
    return text


def registry_hosts(s: Settings) -> str:
    tls = s.registry.tls
    return r.render(
        "registry-hosts.toml",
        registry=s.registry_host,
        scheme="https" if tls else "http",
        ca_line='ca = "/etc/vm-platform/pki/ca.crt"' if tls else "# plain http: allowed by this stack (registry.allowPlainHttp)",
    )


class WorkerNode(pulumi.ComponentResource):
    """Turns one worker host into a Kubernetes node that reports Ready.

    Outputs:
        ready: the readiness step (run on the control plane); stdout is the kubelet version.
        upgraded: the step after which this node runs the stack's Kubernetes version and is
            schedulable again (the next worker's upgrade waits for it).
        node_name: the node's name in Kubernetes.
        restarts: unit name -> restart step (stdout: the unit's start time).
        certificate_expiry: certificate name -> notAfter (UTC) of the node's certificates.
    """

    def __init__(self, name: str, args: WorkerNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:cluster:WorkerNode", name, None, opts)
        s, host, cp = args.settings, args.host, args.control_plane
        self.node_name = host.name
        steps = HostSteps(r.connect(s, host), self, name)
        on_cp = cp.steps.view(self, name)

        hosts_file = steps.run("hosts-file", "hosts-file.sh", stdin=hosts_lines(s, host), delete=("hosts-file.sh", {"ACTION": "remove"}))
        prereqs = steps.run("prereqs", "prereqs.sh", env={"PACKAGES": " ".join(s.packages.worker)}, after=[hosts_file])
        bins = install_binaries(steps, s, FLANNEL_BINARIES, after=[prereqs])
        # A Kubernetes version change reaches this node after the control plane and the previous
        # worker: drain (a new node, or one at the version, is left alone), new binaries, restart,
        # Ready at the version, uncordon.
        drain = on_cp.run(
            "upgrade-drain",
            "node-upgrade.sh",
            env={"ACTION": "drain", "NODE_NAME": host.name, "TARGET": s.kubernetes_version, "TIMEOUT": UPGRADE_TIMEOUT},
            after=[*cp.upgraded, *args.upgrade_after],
        )
        bins.update(install_binaries(steps, s, KUBERNETES_WORKER_BINARIES, after=[prereqs], install_after=[drain]))

        certs, signed = self._certificates(steps, on_cp, cp, host, prereqs)
        self.certificate_expiry = signed.stdout.apply(certificate_expiry)
        containerd = self._container_runtime(steps, s, args.registry_credentials, prereqs, certs)
        flanneld, cni = self._pod_network(steps, on_cp, s, cp, host, bins["flanneld"], certs)

        # On destroy, after kubelet stops and before the runtime's config goes: remove what pods left.
        reset = steps.run(
            "runtime-reset",
            "install-file.sh",
            env={"DEST": "/var/lib/vm-platform/runtime-reset", "MODE": "0644"},
            stdin="managed by vm-platform\n",
            delete=("worker-reset.sh", {}),
            after=[containerd, cni],
        )

        kl_conf = steps.file("kubelet-config", "/etc/vm-platform/kubelet.yaml", kubelet_config(s), after=[prereqs])
        kl_unit = steps.unit("kubelet", r.render("kubelet.service", name=host.name, address=host.address), after=[bins["kubelet"], reset])
        kubelet = steps.restart(
            "kubelet",
            reads=[kl_conf, kl_unit, bins["kubelet"], certs],
            health=f"vmp_node_ready {shlex.quote(cp.api_server_endpoint)} {shlex.quote(host.name)}",
            timeout=180,
            after=[containerd, cni, cp.api_server_ready],
        )

        kp_conf = steps.file("kube-proxy-config", "/etc/vm-platform/kube-proxy.yaml", kube_proxy_config(s, host), after=[prereqs])
        kp_unit = steps.unit("kube-proxy", r.render("kube-proxy.service"), after=[bins["kube-proxy"], reset])
        kube_proxy = steps.restart(
            "kube-proxy",
            reads=[kp_conf, kp_unit, bins["kube-proxy"], certs],
            health="curl -fs http://127.0.0.1:10256/healthz",
            after=[cp.api_server_ready],
        )
        self.restarts = {"containerd": containerd, "flanneld": flanneld, "kubelet": kubelet, "kube-proxy": kube_proxy}
        if s.network.policy_enforcer == "vmp-netpol":
            # Beside kube-proxy, with its identity (kube-proxy.kubeconfig; the cluster grants that
            # user read access to pods, namespaces and NetworkPolicies: ClusterPolicies).
            bins.update(install_binaries(steps, s, NETPOL_BINARIES, after=[prereqs]))
            np_unit = steps.unit("vmp-netpol", r.render("vmp-netpol.service", name=host.name), after=[bins["vmp-netpol"], reset])
            self.restarts["vmp-netpol"] = steps.restart(
                "vmp-netpol",
                reads=[np_unit, bins["vmp-netpol"], certs],
                health="vmp_netpol_ready",
                after=[cp.api_server_ready],
            )
        steps.done()

        # The kubelet restart already waits for Ready; this confirms it from the control plane's
        # side once (its stdout is the kubelet version the API server reports).
        # Removing the worker from the stack deletes this step first (it depends on the host's
        # steps): drain and delete the Node; then the host's steps undo themselves, and its
        # flannel lease goes once its flanneld has stopped (_pod_network).
        ready = on_cp.run(
            "ready",
            "wait-node-ready.sh",
            env={"NODE_NAME": host.name, "TIMEOUT": 300},
            delete=("remove-node.sh", {"NODE_NAME": host.name}),
            after=[kubelet, kube_proxy],
        )
        self.ready = ready.command
        self.upgraded = on_cp.run(
            "upgrade-uncordon",
            "node-upgrade.sh",
            env={"ACTION": "uncordon", "NODE_NAME": host.name, "TARGET": s.kubernetes_version, "TIMEOUT": UPGRADE_TIMEOUT},
            after=[kubelet, kube_proxy, ready],
        ).command
        self.register_outputs({"node_name": self.node_name, "ready": ready.stdout})

    @staticmethod
    def _certificates(steps: HostSteps, on_cp: HostSteps, cp: ControlPlane, host: Host, prereqs: CommandStep) -> tuple[CommandStep, CommandStep]:
        """Keys made here, CSRs signed on the control plane, certs installed here. Returns the
        install step, whose digest is the hash of the certificate bundle the node's services
        read, and the signing step (its output also reports the certificates' expiry)."""
        keys = steps.run("keys", "node-keys.sh", env={"NODE_NAME": host.name}, delete=("remove-pki.sh", {}), after=[prereqs])
        signed = cp.sign_node(on_cp, host, keys.stdout)
        certs_text = pulumi.Output.concat(signed.stdout.apply(without_expiry), cp.ca_bundle)
        return steps.run("certs", "node-certs.sh", env={"API_SERVER": cp.api_server_endpoint}, stdin=certs_text, after=[keys]), signed

    @staticmethod
    def _pod_network(
        steps: HostSteps, on_cp: HostSteps, s: Settings, cp: ControlPlane, host: Host, binary: CommandStep, certs: CommandStep
    ) -> tuple[CommandStep, CommandStep]:
        """flanneld leases this node's subnet from etcd (restarted when the pod-network config in
        etcd changes); the CNI config follows each flanneld restart. The lease is released on the
        control plane when the worker leaves the stack, after its flanneld has stopped (the unit
        depends on the release step, so it is deleted first): a running flanneld takes it again."""
        lease = on_cp.run(
            "flannel-lease",
            "flannel-lease.sh",
            env={"ACTION": "show", "NODE_ADDR": host.address, "ETCD_PREFIX": ETCD_PREFIX},
            delete=("flannel-lease.sh", {"ACTION": "release", "NODE_ADDR": host.address, "ETCD_PREFIX": ETCD_PREFIX}),
            after=[cp.pod_network],
        )
        text = r.render("flanneld.service", etcd_address=s.control_plane.address, etcd_prefix=ETCD_PREFIX, address=host.address)
        unit = steps.unit("flanneld", text, after=[certs, binary, lease])
        flanneld = steps.restart("flanneld", reads=[unit, binary, certs, cp.pod_network], health="test -s /run/flannel/subnet.env")
        cni = steps.run("cni-config", "cni-config.sh", env={"CNI_CONF": CNI_CONF}, reads=[flanneld], delete=("remove-file.sh", {"DEST": CNI_CONF}))
        return flanneld, cni

    @staticmethod
    def _container_runtime(
        steps: HostSteps, s: Settings, credentials: pulumi.Output[tuple[str, str]] | None, prereqs: CommandStep, certs: CommandStep
    ) -> CommandStep:
        """containerd's config (secret when it holds registry credentials) and registry hosts
        file, and its restart."""
        if credentials is not None:
            text: pulumi.Input[str] = credentials.apply(lambda c: containerd_config(s, c))
        else:
            text = containerd_config(s, None)
        conf = steps.file("containerd-config", "/etc/containerd/config.toml", text, mode="0600", secret=credentials is not None, after=[prereqs])
        hosts = steps.file("containerd-registry", f"/etc/containerd/certs.d/{s.registry_host}/hosts.toml", registry_hosts(s), after=[prereqs])
        return steps.restart("containerd", reads=[conf, hosts], health="test -S /run/containerd/containerd.sock", after=[certs])
