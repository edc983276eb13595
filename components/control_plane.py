"""The control-plane host: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the
pod-network config in etcd, and the cluster's certificates (made on this host; CA keys never
leave it)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from . import remote as r
from .binaries import CONTROL_PLANE_BINARIES, install_binaries, version_stamp
from .settings import Settings

ETCD_PREFIX = "/coreos.com/network"

CONTROL_PLANE_SCRIPTS = (
    "hosts-file.sh", "prereqs.sh", "install-binary.sh", "install-file.sh", "remove-file.sh",
    "restart-service.sh", "stop-service.sh", "pki-lib.sh", "pki-init.sh", "remove-pki.sh",
    "sign-node.sh", "pod-network.sh", "remove-pod-network.sh", "wait-node-ready.sh",
    "read-kubeconfig.sh", "registry-htpasswd.sh", "push-image.sh",
)  # fmt: skip


@dataclass(frozen=True)
class ControlPlaneArgs:
    settings: Settings
    """The validated stack settings."""


def hosts_lines(settings: Settings) -> str:
    hosts = [settings.control_plane, *settings.workers]
    return "".join(f"{h.address} {h.name}\n" for h in hosts)


def pod_network_config(settings: Settings) -> str:
    """flannel's network config, as stored in etcd (compact JSON, stable key order)."""
    n = settings.network
    return json.dumps({"Network": n.pod_cidr, "SubnetLen": n.pod_subnet_length, "Backend": {"Type": n.backend}}, sort_keys=True, separators=(",", ":"))


def parse_b64_lines(text: str) -> dict[str, str]:
    """name=base64 lines (the host scripts' output format) -> name -> decoded text."""
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = base64.b64decode(v.strip()).decode()
    return out


class ControlPlane(pulumi.ComponentResource):
    """Turns the control-plane host into a Kubernetes control plane.

    Outputs:
        target: how to reach the host (for other components' steps on it).
        scripts: the installed host scripts (steps on this host depend on it).
        prereqs: the OS-prerequisites step.
        ca_bundle: the public CA certificates as name=base64 lines (ca, etcd_ca).
        api_server_ready: the API server restart step (the API answers once it is done).
        kubeconfig: the admin kubeconfig with the external API address (secret).
        api_server_endpoint: https://<address>:<port>.
    """

    kubeconfig: pulumi.Output[str]
    api_server_endpoint: str
    ca_bundle: pulumi.Output[str]

    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:cluster:ControlPlane", name, None, opts)
        s = args.settings
        host = s.control_plane
        n = s.network
        self.target = t = r.connect(s, host)
        self.api_server_endpoint = f"https://{host.address}:{n.api_server_port}"
        p = name

        self.scripts = r.HostScripts(f"{p}-scripts", (t, CONTROL_PLANE_SCRIPTS), pulumi.ResourceOptions(parent=self))
        base = [self.scripts.installed]
        hosts_file = r.step(
            f"{p}-hosts-file", t, "hosts-file.sh", parent=self, stdin=hosts_lines(s), delete=("hosts-file.sh", {"ACTION": "remove"}), depends_on=base
        )
        self.prereqs = r.step(
            f"{p}-prereqs", t, "prereqs.sh", parent=self, env={"PACKAGES": " ".join(s.packages.control_plane)}, depends_on=[*base, hosts_file]
        )
        bins = install_binaries(p, s, t, CONTROL_PLANE_BINARIES, parent=self, depends_on=[self.prereqs])

        pki = r.step(
            f"{p}-pki",
            t,
            "pki-init.sh",
            parent=self,
            env={
                "CP_NAME": host.name,
                "CP_ADDR": host.address,
                "SERVICE_IP": n.kubernetes_service_ip,
                "CLUSTER_DOMAIN": n.cluster_domain,
                "API_PORT": n.api_server_port,
            },
            delete=("remove-pki.sh", {}),
            depends_on=[self.prereqs],
        )
        self.pki = pki
        self.ca_bundle = pki.stdout

        # etcd
        etcd_unit_text = r.render("etcd.service", name=host.name, address=host.address, nofile=s.runtime.max_open_files)
        etcd_unit = r.unit_file(f"{p}-etcd-unit", t, "etcd", etcd_unit_text, parent=self, depends_on=[pki, bins["etcd"]], data_dir="/var/lib/etcd")
        etcd = r.restart(
            f"{p}-etcd-restart", t, "etcd", [r.sha256(etcd_unit_text), version_stamp(s, "etcd")], parent=self,
            health="ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/vm-platform/pki/etcd-ca.crt --cert=/etc/vm-platform/pki/etcd-admin.crt --key=/etc/vm-platform/pki/etcd-admin.key endpoint health",
            depends_on=[etcd_unit, bins["etcdctl"]],
        )  # fmt: skip
        network_text = pod_network_config(s)
        self.pod_network = r.step(
            f"{p}-pod-network", t, "pod-network.sh", parent=self, env={"ETCD_PREFIX": ETCD_PREFIX}, stdin=network_text,
            delete=("remove-pod-network.sh", {"ETCD_PREFIX": ETCD_PREFIX}), depends_on=[etcd],
        )  # fmt: skip

        # kube-apiserver
        api_text = r.render(
            "kube-apiserver.service", address=host.address, api_port=n.api_server_port, service_cidr=n.service_cidr,
            cluster_domain=n.cluster_domain, nofile=s.runtime.max_open_files,
        )  # fmt: skip
        api_unit = r.unit_file(f"{p}-kube-apiserver-unit", t, "kube-apiserver", api_text, parent=self, depends_on=[pki, bins["kube-apiserver"]])
        admin_curl = "curl -fs --cacert /etc/vm-platform/pki/ca.crt --cert /etc/vm-platform/pki/admin.crt --key /etc/vm-platform/pki/admin.key"
        self.api_server_ready = r.restart(
            f"{p}-kube-apiserver-restart", t, "kube-apiserver", [r.sha256(api_text), version_stamp(s, "kube-apiserver")], parent=self,
            health=f"{admin_curl} https://127.0.0.1:{n.api_server_port}/readyz", timeout=180, depends_on=[api_unit, etcd],
        )  # fmt: skip

        # kube-controller-manager and kube-scheduler
        cm_text = r.render("kube-controller-manager.service", pod_cidr=n.pod_cidr, service_cidr=n.service_cidr)
        cm_unit = r.unit_file(
            f"{p}-kube-controller-manager-unit", t, "kube-controller-manager", cm_text, parent=self, depends_on=[pki, bins["kube-controller-manager"]]
        )
        self.controller_manager = r.restart(
            f"{p}-kube-controller-manager-restart", t, "kube-controller-manager",
            [r.sha256(cm_text), version_stamp(s, "kube-controller-manager")], parent=self,
            health="curl -fsk https://127.0.0.1:10257/healthz", depends_on=[cm_unit, self.api_server_ready],
        )  # fmt: skip
        sched_text = r.render("kube-scheduler.service")
        sched_unit = r.unit_file(f"{p}-kube-scheduler-unit", t, "kube-scheduler", sched_text, parent=self, depends_on=[pki, bins["kube-scheduler"]])
        self.scheduler = r.restart(
            f"{p}-kube-scheduler-restart", t, "kube-scheduler", [r.sha256(sched_text), version_stamp(s, "kube-scheduler")], parent=self,
            health="curl -fsk https://127.0.0.1:10259/healthz", depends_on=[sched_unit, self.api_server_ready],
        )  # fmt: skip

        kubeconfig_cmd = r.step(
            f"{p}-kubeconfig", t, "read-kubeconfig.sh", parent=self, env={"API_SERVER": self.api_server_endpoint},
            secret=True, depends_on=[self.api_server_ready, bins["kubectl"]],
        )  # fmt: skip
        self.kubeconfig = pulumi.Output.secret(kubeconfig_cmd.stdout)
        self.register_outputs({"kubeconfig": self.kubeconfig, "api_server_endpoint": self.api_server_endpoint, "ca_bundle": self.ca_bundle})

    def sign_node(self, name: str, node: str, address: str, csrs: pulumi.Output[str], parent: pulumi.Resource) -> remote.Command:
        """Sign a worker's CSRs on this host (the CA keys stay here)."""
        return r.step(
            name, self.target, "sign-node.sh", parent=parent, env={"NODE_NAME": node, "NODE_ADDR": address},
            stdin=csrs, depends_on=[self.pki],
        )  # fmt: skip
