"""Node maintenance as config: every node in maintenance.nodes is cordoned (and drained when
maintenance.drain is true) until it is removed from the list, which uncordons it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from .k8s import KubernetesObject
from .remote import Target, shell_env
from .settings import Settings


@dataclass(frozen=True)
class NodeMaintenanceArgs:
    settings: Settings
    """The validated stack settings."""
    control_plane: Target
    """Where kubectl drain runs (with the admin kubeconfig that stays on that host)."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """The nodes' readiness steps."""


class NodeMaintenance(pulumi.ComponentResource):
    """Cordon (a declarative NodePatch) and drain for each node under maintenance.

    Outputs:
        cordoned: node name -> the NodePatch that sets spec.unschedulable.
    """

    def __init__(self, name: str, args: NodeMaintenanceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:cluster:NodeMaintenance", name, None, opts)
        s = args.settings
        self.cordoned: dict[str, KubernetesObject] = {}
        for node in s.maintenance.nodes:
            patch = KubernetesObject(
                f"{name}-{node}-cordon",
                "NodePatch",
                metadata={"name": node, "annotations": {"vm-platform/maintenance": "true"}},
                spec={"unschedulable": True},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            self.cordoned[node] = patch
            if s.maintenance.drain:
                env = shell_env({"KUBECONFIG": "/etc/vm-platform/admin.kubeconfig"})
                remote.Command(
                    f"{name}-{node}-drain",
                    connection=args.control_plane.connection,
                    create=f"{env} kubectl drain {node} --ignore-daemonsets --delete-emptydir-data --timeout=300s",
                    # Leaving maintenance: make the node schedulable again (tolerates a node that is gone).
                    delete=f"{env} kubectl uncordon {node} || true",
                    add_previous_output_in_env=False,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[patch]),
                )
        self.register_outputs({"cordoned": {n: p.id for n, p in self.cordoned.items()}})
