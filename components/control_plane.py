"""The control-plane host: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the
pod-network config in etcd, and the cluster's certificates (made on this host; CA keys never
leave it)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi

from . import remote as r
from .binaries import ETCD_BINARIES, KUBERNETES_CONTROL_PLANE_BINARIES, install_binaries
from .previous import Renewals
from .settings import Host, Settings
from .steps import CommandStep, HostSteps, Step
from .upgrade import check_version_change

ETCD_PREFIX = "/coreos.com/network"


@dataclass(frozen=True)
class ControlPlaneArgs:
    settings: Settings
    """The validated stack settings."""
    previous: pulumi.StackReference
    """The stack's last deployment (components/previous.py): its Kubernetes version."""
    renewals: Renewals
    """Certificate renewal from the last deployment's expiry dates (components/previous.py)."""


def hosts_lines(settings: Settings, host: Host) -> str:
    """The /etc/hosts block of one host: the control plane and the host itself. Nothing else
    resolves node names (the API server reaches kubelets by address), so adding or removing a
    worker changes no other host."""
    hosts = [settings.control_plane, *([host] if host != settings.control_plane else [])]
    return "".join(f"{h.address} {h.name}\n" for h in hosts)


def pod_network_config(settings: Settings) -> str:
    """flannel's network config, as stored in etcd (compact JSON, stable key order)."""
    n = settings.network
    config = {"Network": n.pod_cidr, "SubnetLen": n.pod_subnet_length, "Backend": {"Type": n.backend}}
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def parse_b64_lines(text: str) -> dict[str, str]:
    """name=base64 lines (the host scripts' output format) -> name -> decoded text."""
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = base64.b64decode(v.strip()).decode()
    return out


EXPIRY = "expiry"  # the name of the line in which pki-init.sh and sign-node.sh report expiry dates


def certificate_expiry(text: str) -> dict[str, str]:
    """The expiry line of a PKI step's output -> certificate name -> notAfter (UTC, ISO 8601)."""
    report = parse_b64_lines(text).get(EXPIRY, "")
    return dict(line.split(" ", 1) for line in report.splitlines() if " " in line)


def without_expiry(text: str) -> str:
    """A PKI step's output as certificates only (what node-certs.sh installs)."""
    return "".join(line + "\n" for line in text.splitlines() if line and not line.startswith(f"{EXPIRY}="))


class ControlPlane(pulumi.ComponentResource):
    """Turns the control-plane host into a Kubernetes control plane.

    Outputs:
        target: how to reach the host (for other components' steps on it).
        steps: this host's steps; other components declare theirs through `steps.view(...)`,
            and whoever builds the last of them calls `steps.done()` (Cluster does).
        scripts: the installed host scripts (steps on this host depend on it).
        prereqs: the OS-prerequisites step.
        pki: the certificate step; its stdout (`ca_bundle`) is the public CA certificates.
        ca_bundle: the public CA certificates as name=base64 lines (ca, etcd_ca).
        certificate_expiry: certificate name -> notAfter (UTC) of every certificate on this host.
        pod_network: the pod-network config step (digest: sha256 of the config flanneld reads).
        upgrade_gate: the version check (and pre-upgrade etcd snapshot) every Kubernetes binary
            install on this host waits for.
        api_server_ready: the API server restart step (the API answers once it is done).
        upgraded: the controller manager's and scheduler's restarts: after them the control
            plane runs the stack's Kubernetes version (workers upgrade after it).
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
        self.target = r.connect(s, host)
        self.api_server_endpoint = f"https://{host.address}:{n.api_server_port}"
        self.cert_days = s.pki.cert_validity_days
        self.steps = steps = HostSteps(self.target, self, name)
        self.scripts = steps.scripts

        hosts_file = steps.run("hosts-file", "hosts-file.sh", stdin=hosts_lines(s, host), delete=("hosts-file.sh", {"ACTION": "remove"}))
        self.prereqs = steps.run("prereqs", "prereqs.sh", env={"PACKAGES": " ".join(s.packages.control_plane)}, after=[hosts_file])
        pki_env = {
            "CP_NAME": host.name,
            "CP_ADDR": host.address,
            "SERVICE_IP": n.kubernetes_service_ip,
            "CLUSTER_DOMAIN": n.cluster_domain,
            "API_PORT": n.api_server_port,
            "CA_DAYS": s.pki.ca_validity_days,
            "CERT_DAYS": s.pki.cert_validity_days,
            "RENEW": args.renewals.mark(host.name),
        }
        self.renewals = args.renewals
        self.pki = steps.run("pki", "pki-init.sh", env=pki_env, delete=("remove-pki.sh", {}), after=[self.prereqs])
        self._pki_env = pki_env
        bins = install_binaries(steps, s, ETCD_BINARIES, after=[self.prereqs])
        # Before any Kubernetes binary is replaced: refuse a downgrade or a skipped minor version,
        # and snapshot etcd when the version changes (upgrade-gate.sh).
        snapshots = s.etcd_snapshots
        # The same check from the stack's last version fails the preview first (components/upgrade.py);
        # the gate's (empty) stdin waits for it, so a refused change touches no host.
        checked = check_version_change(s, args.previous, self)
        self.upgrade_gate = steps.run(
            "upgrade-gate",
            "upgrade-gate.sh",
            env={"TARGET": s.kubernetes_version, "DIR": snapshots.dir, "KEEP": snapshots.keep},
            stdin=checked.apply(lambda _: ""),
            after=[self.pki, bins["etcdctl"]],
        )
        bins.update(install_binaries(steps, s, KUBERNETES_CONTROL_PLANE_BINARIES, after=[self.prereqs, self.upgrade_gate]))
        self.ca_bundle = steps.run("ca-bundle", "ca-bundle.sh", env={"CA_DAYS": s.pki.ca_validity_days}, after=[self.pki]).stdout
        self.certificate_expiry = self.pki.stdout.apply(certificate_expiry)

        etcd = self._etcd(s, host, bins)
        self.pod_network = steps.run(
            "pod-network",
            "pod-network.sh",
            env={"ETCD_PREFIX": ETCD_PREFIX},
            stdin=pod_network_config(s),
            delete=("remove-pod-network.sh", {"ETCD_PREFIX": ETCD_PREFIX}),
            after=[etcd],
        )
        steps.run(
            "etcd-snapshots",
            "etcd-snapshot.sh",
            env={"ACTION": "schedule", "INTERVAL": snapshots.interval_minutes, "DIR": snapshots.dir, "KEEP": snapshots.keep},
            delete=("etcd-snapshot.sh", {"ACTION": "unschedule"}),
            after=[etcd],
        )
        self.api_server_ready = self._api_server(s, host, bins, etcd)
        self.upgraded = self._controllers(s, bins)
        kubeconfig = steps.run(
            "kubeconfig",
            "read-kubeconfig.sh",
            env={"API_SERVER": self.api_server_endpoint},
            secret=True,
            reads=[self.pki_read("admin")],
            after=[self.api_server_ready, bins["kubectl"]],
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.register_outputs({"kubeconfig": self.kubeconfig, "api_server_endpoint": self.api_server_endpoint, "ca_bundle": self.ca_bundle})

    def pki_read(self, *certificates: str) -> CommandStep:
        """The PKI step as read by a service of these certificates: its digest is what decides
        them (the settings they are issued from, and a renewal mark that names one of them), so
        the service restarts when they are issued again, and not for another's change or an edit
        of the script's text alone (a change to what it issues needs a setting)."""
        inputs = {
            "etcd-server": ("CP_NAME", "CP_ADDR"),
            "apiserver": ("CP_NAME", "CP_ADDR", "SERVICE_IP", "CLUSTER_DOMAIN"),
            "registry": ("CP_NAME", "CP_ADDR"),
            "controller-manager": ("API_PORT",),
            "scheduler": ("API_PORT",),
            "admin": ("API_PORT",),
        }
        env = self._pki_env
        keys = sorted({"CERT_DAYS", *(k for c in certificates for k in inputs.get(c, ()))})
        fixed = r.shell_env({k: env[k] for k in keys})

        def digest(mark: object) -> str:
            named = set(str(mark or "").split("@")[0].split(","))
            return r.sha256(fixed + (f" RENEW={mark}" if named & set(certificates) else ""))

        return Step(self.pki.command, pulumi.Output.from_input(env["RENEW"]).apply(digest))

    def _etcd(self, s: Settings, host: Host, bins: dict[str, CommandStep]) -> CommandStep:
        text = r.render("etcd.service", name=host.name, address=host.address, nofile=s.runtime.max_open_files)
        unit = self.steps.unit("etcd", text, data_dir="/var/lib/etcd", after=[self.pki, bins["etcd"]])
        return self.steps.restart(
            "etcd", reads=[unit, bins["etcd"], self.pki_read("etcd-server")], health="vmp_etcdctl endpoint health", after=[bins["etcdctl"]]
        )

    def _api_server(self, s: Settings, host: Host, bins: dict[str, CommandStep], etcd: CommandStep) -> CommandStep:
        n = s.network
        text = r.render(
            "kube-apiserver.service",
            address=host.address,
            api_port=n.api_server_port,
            service_cidr=n.service_cidr,
            cluster_domain=n.cluster_domain,
            nofile=s.runtime.max_open_files,
            evict_seconds=s.node_loss.evict_seconds,
        )
        unit = self.steps.unit("kube-apiserver", text, after=[self.pki, bins["kube-apiserver"]])
        health = f"vmp_admin_curl https://127.0.0.1:{n.api_server_port}/readyz"
        return self.steps.restart(
            "kube-apiserver",
            reads=[unit, bins["kube-apiserver"], self.pki_read("apiserver", "apiserver-kubelet-client", "apiserver-etcd-client")],
            health=health,
            timeout=180,
            after=[etcd],
        )

    def _controllers(self, s: Settings, bins: dict[str, CommandStep]) -> list[CommandStep]:
        """kube-controller-manager and kube-scheduler: both wait for the API server. Returns
        their restarts: once they are done, the control plane runs the stack's version."""
        n = s.network
        texts = {
            "kube-controller-manager": (
                r.render(
                    "kube-controller-manager.service",
                    pod_cidr=n.pod_cidr,
                    service_cidr=n.service_cidr,
                    detect_seconds=s.node_loss.detect_seconds,
                    monitor_period=s.node_loss.monitor_period,
                ),
                10257,
            ),
            "kube-scheduler": (r.render("kube-scheduler.service"), 10259),
        }
        restarts = []
        for unit_name, (text, port) in texts.items():
            unit = self.steps.unit(unit_name, text, after=[self.pki, bins[unit_name]])
            restarts.append(
                self.steps.restart(
                    unit_name,
                    reads=[unit, bins[unit_name], self.pki_read(unit_name.removeprefix("kube-"))],  # its kubeconfig's certificate
                    health=f"curl -fsk https://127.0.0.1:{port}/healthz",
                    after=[self.api_server_ready],
                )
            )
        return restarts

    def sign_node(self, on_control_plane: HostSteps, node: Host, csrs: pulumi.Output[str]) -> CommandStep:
        """Sign a worker's CSRs on this host (the CA keys stay here); `on_control_plane` is the
        worker's view of this host's steps (`steps.view(worker, prefix)`)."""
        return on_control_plane.run(
            "sign",
            "sign-node.sh",
            env={"NODE_NAME": node.name, "NODE_ADDR": node.address, "CERT_DAYS": self.cert_days, "RENEW": self.renewals.mark(node.name)},
            stdin=csrs,
            after=[self.pki],
        )
