"""Node maintenance: workers to cordon (and drain) as a config change; remove them to uncordon.
Node loss: how fast the cluster notices a lost node and moves its pods. etcd snapshots: where
and how often the cluster's data is saved on the control-plane host."""

from __future__ import annotations

from dataclasses import dataclass

from .core import Reader
from .fields import Bool, Int, Names, Text, setting


@dataclass(frozen=True)
class MaintenanceSettings:
    """Workers taken out of scheduling; at least one must stay schedulable (checks.py)."""

    nodes: tuple[str, ...] = setting(Names(None, "a list", shape="list of worker names"), (), "workers to cordon (and drain)")
    drain: bool = setting(Bool(), True, "also evict the pods of cordoned workers")


def parse_maintenance(r: Reader) -> MaintenanceSettings:
    return MaintenanceSettings(**r.section(MaintenanceSettings, "maintenance"))


@dataclass(frozen=True)
class NodeLossSettings:
    """A node that stops answering (crash, power loss, network cut): its pods move after
    detectSeconds + evictSeconds, plus their start-up. The defaults are Kubernetes' own."""

    detect_seconds: int = setting(
        Int(8, 600),
        50,
        "a node is NotReady this long after its last heartbeat (controller manager --node-monitor-grace-period; the kubelet heartbeats at least 4 times in it)",
    )
    evict_seconds: int = setting(
        Int(0, 3600),
        300,
        "then its pods are deleted and recreated elsewhere (not-ready/unreachable tolerations of every platform pod"
        " and the API server's default for other pods); a StatefulSet's pod waits for the node (at most one pod per identity)",
    )

    @property
    def monitor_period(self) -> int:
        """How often the controller manager checks the nodes' heartbeats (Kubernetes: 5 s)."""
        return max(1, min(5, self.detect_seconds // 8))

    @property
    def lease_seconds(self) -> int:
        """The kubelet's node lease (renewed every quarter of it; Kubernetes: 40 s)."""
        return min(40, self.detect_seconds)

    @property
    def status_seconds(self) -> int:
        """How often the kubelet posts its node status (Kubernetes: 10 s)."""
        return min(10, max(1, self.detect_seconds // 4))

    def tolerations(self) -> list[dict[str, object]]:
        """The pod tolerations that make its pods leave a lost node after evictSeconds."""
        return [
            {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": self.evict_seconds}
            for taint in ("not-ready", "unreachable")
        ]


def parse_node_loss(r: Reader) -> NodeLossSettings:
    return NodeLossSettings(**r.section(NodeLossSettings, "nodeLoss"))


@dataclass(frozen=True)
class EtcdSnapshotSettings:
    """etcd snapshots on the control-plane host: on a systemd timer, and before every Kubernetes
    version change (the upgrade gate takes one before any binary is replaced)."""

    dir: str = setting(
        Text(r"/\S*", "an absolute directory on the control-plane host", shape="path"),
        "/var/backups/vm-platform/etcd",
        "where snapshots are written (kept when the stack is destroyed)",
    )
    interval_minutes: int = setting(Int(0, 10080), 360, "minutes between scheduled snapshots (0: only those before upgrades)")
    keep: int = setting(Int(1, 1000), 14, "snapshots kept of each kind (scheduled, pre-upgrade); older ones are deleted")


def parse_etcd_snapshots(r: Reader) -> EtcdSnapshotSettings:
    return EtcdSnapshotSettings(**r.section(EtcdSnapshotSettings, "etcdSnapshots"))
