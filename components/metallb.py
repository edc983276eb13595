"""The LoadBalancer on bare hosts: MetalLB in L2 mode (network.loadBalancer: metallb).

The controller assigns each LoadBalancer Service an address from network.loadBalancerPool; a
speaker on every node answers ARP for the addresses whose Service it is elected to announce
(memberlist between the speakers, port 7946, moves an address off a lost node in seconds).
Traffic then reaches the Service through kube-proxy on that node.

CRDs and RBAC are MetalLB's own, as `python3 -m tools.images` takes them from the module it
builds the binaries from (metallb.manifests): they always match the binaries, and nothing of
them is copied into this repository. The admission webhook is off (`--webhook-mode=disabled`):
the pool and advertisement come from validated stack settings, and a webhook would need its own
certificates and a Service the API server reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from .k8s import KubernetesObject, env_from_field
from .namespaces import pull_secret
from .settings import Settings
from .settings.registry import expand

NAMESPACE = "metallb-system"
MONITORING_PORT = 7472
MEMBERLIST_PORT = 7946
MEMBERLIST_SECRET = "memberlist"
MEMBERLIST_KEY_DIR = "/etc/ml_secret_key"
SPEAKER_LABELS = {"app": "metallb", "component": "speaker"}
CONTROLLER_LABELS = {"app": "metallb", "component": "controller"}


def load_manifests(path: str) -> list[dict[str, Any]]:
    """MetalLB's CRDs, roles, bindings and service accounts from the file tools.images wrote."""
    import yaml

    with open(expand(path)) as f:
        # libyaml's loader when pyyaml has it: the 67 KB of CRDs parse in 0.03 s instead of 0.22 s,
        # on every preview.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        docs = [d for d in yaml.load_all(f, Loader=loader) if isinstance(d, dict) and d.get("kind")]
    kinds = {d["kind"] for d in docs}
    if "CustomResourceDefinition" not in kinds or "ClusterRole" not in kinds:
        raise ValueError(f"{path} holds no MetalLB CRDs or roles (kinds: {sorted(kinds)}): rebuild it with python3 -m tools.images")
    return docs


VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def _rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upstream's rules without PodSecurityPolicy (gone since Kubernetes 1.25) and with a
    wildcard verb spelt out as today's verbs (the same grant now, none of a future verb)."""
    out = []
    for r in rules:
        if "podsecuritypolicies" in r.get("resources", []):
            continue
        out.append({**r, "verbs": VERBS} if "*" in r.get("verbs", []) else r)
    return out


def _probe() -> dict[str, Any]:
    return {"httpGet": {"path": "/metrics", "port": "monitoring"}, "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3}


@dataclass(frozen=True)
class LoadBalancerArgs:
    settings: Settings
    """The validated stack settings."""
    registry_credentials: pulumi.Output[tuple[str, str]] | None = None
    """(user, password) of the private registry, when it requires auth (a pull secret is made)."""


class LoadBalancer(pulumi.ComponentResource):
    """MetalLB: CRDs, RBAC, controller Deployment, speaker DaemonSet, the IPAddressPool and the
    L2Advertisement from settings.

    Outputs:
        ready: resources a LoadBalancer Service should wait for (the pool, the advertisement,
            the controller and the speakers).
    """

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:platform:LoadBalancer", name, None, opts)
        s, m = args.settings, args.settings.metallb
        # Pod Security privileged: the speaker needs the host network and raw sockets.
        namespace = KubernetesObject(
            f"{name}-namespace",
            "Namespace",
            metadata={"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "vm-platform", "pod-security.kubernetes.io/enforce": "privileged"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        # Literal names (not Outputs) so a preview shows them and the policy pack can match the
        # namespace; depends_on keeps the order.
        ns = NAMESPACE
        pull_names = [pull_secret(f"{name}-pull", ns, s, args.registry_credentials, self, after=namespace)] if args.registry_credentials is not None else []
        crds: list[pulumi.Resource] = []
        rbac: list[pulumi.Resource] = []
        accounts: dict[str, str] = {}
        for doc in load_manifests(m.manifests):
            kind, meta = doc["kind"], dict(doc.get("metadata") or {})
            rname = f"{name}-{kind.lower()}-{meta['name'].replace(':', '-').replace('.', '-')}"
            if kind == "CustomResourceDefinition":
                crds.append(KubernetesObject(rname, kind, metadata=meta, spec=doc["spec"], opts=child))
            elif kind in ("ClusterRole", "Role"):
                if kind == "Role":
                    meta["namespace"] = ns
                rbac.append(KubernetesObject(rname, kind, metadata=meta, rules=_rules(doc.get("rules", [])), opts=child))
            elif kind in ("ClusterRoleBinding", "RoleBinding"):
                if kind == "RoleBinding":
                    meta["namespace"] = ns
                subjects = [{**x, "namespace": ns} if x.get("kind") == "ServiceAccount" else x for x in doc.get("subjects", [])]
                rbac.append(KubernetesObject(rname, kind, metadata=meta, roleRef=doc["roleRef"], subjects=subjects, opts=child))
            elif kind == "ServiceAccount":
                sa = KubernetesObject(rname, kind, metadata={**meta, "namespace": ns}, opts=child)
                accounts[meta["name"]] = meta["name"]
                rbac.append(sa)
        for needed in ("controller", "speaker"):
            if needed not in accounts:
                raise ValueError(f"{m.manifests} has no ServiceAccount {needed!r}: rebuild it with python3 -m tools.images")
        pulls = [{"name": x} for x in pull_names]
        after_rbac = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *crds, *rbac])
        ns_env = env_from_field("METALLB_NAMESPACE", "metadata.namespace")
        container_security = {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        controller = KubernetesObject(
            f"{name}-controller",
            "Deployment",
            metadata={"name": "controller", "namespace": ns, "labels": CONTROLLER_LABELS},
            spec={
                "revisionHistoryLimit": 3,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "selector": {"matchLabels": CONTROLLER_LABELS},
                "template": {
                    "metadata": {"labels": CONTROLLER_LABELS},
                    "spec": {
                        "serviceAccountName": accounts["controller"],
                        "automountServiceAccountToken": True,  # it assigns addresses through the API
                        "tolerations": s.node_loss.tolerations(),
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "runAsGroup": 65534,
                            "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {
                                "name": "controller",
                                "image": s.image_ref(m.controller_image),
                                "imagePullPolicy": "IfNotPresent",
                                "args": [
                                    f"--port={MONITORING_PORT}",
                                    "--log-level=info",
                                    "--webhook-mode=disabled",
                                    "--tls-min-version=VersionTLS12",
                                    # The Secret holding the speakers' memberlist key, which the controller creates.
                                    f"--ml-secret-name={MEMBERLIST_SECRET}",
                                    "--deployment=controller",
                                ],
                                "env": [ns_env],
                                "ports": [{"name": "monitoring", "containerPort": MONITORING_PORT, "protocol": "TCP"}],
                                "livenessProbe": _probe(),
                                "readinessProbe": _probe(),
                                "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
                                "securityContext": {**container_security, "runAsNonRoot": True},
                            }
                        ],
                        **({"imagePullSecrets": pulls} if pulls else {}),
                    },
                },
            },
            opts=after_rbac,
        )
        speaker = KubernetesObject(
            f"{name}-speaker",
            "DaemonSet",
            metadata={"name": "speaker", "namespace": ns, "labels": SPEAKER_LABELS},
            spec={
                "selector": {"matchLabels": SPEAKER_LABELS},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": SPEAKER_LABELS},
                    "spec": {
                        "serviceAccountName": accounts["speaker"],
                        "automountServiceAccountToken": True,  # it watches Services and nodes
                        "hostNetwork": True,  # answers ARP on the hosts' segment
                        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                        "terminationGracePeriodSeconds": 2,
                        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [
                            {
                                "name": "speaker",
                                "image": s.image_ref(m.speaker_image),
                                "imagePullPolicy": "IfNotPresent",
                                "args": [f"--port={MONITORING_PORT}", "--log-level=info", f"--ml-secret-key-path={MEMBERLIST_KEY_DIR}"],
                                "env": [
                                    env_from_field("METALLB_NODE_NAME", "spec.nodeName"),
                                    env_from_field("METALLB_POD_NAME", "metadata.name"),
                                    env_from_field("METALLB_HOST", "status.hostIP"),
                                    env_from_field("METALLB_ML_BIND_ADDR", "status.podIP"),
                                    {"name": "METALLB_ML_LABELS", "value": "app=metallb,component=speaker"},
                                    {"name": "METALLB_ML_BIND_PORT", "value": str(MEMBERLIST_PORT)},
                                    ns_env,
                                    # On the host network the kubernetes Service address needs a
                                    # route the hosts may lack (no default route, as in the lab):
                                    # the API server's own address needs none.
                                    {"name": "KUBERNETES_SERVICE_HOST", "value": s.control_plane.address},
                                    {"name": "KUBERNETES_SERVICE_PORT", "value": str(s.network.api_server_port)},
                                ],
                                "ports": [
                                    {"name": "monitoring", "containerPort": MONITORING_PORT, "protocol": "TCP"},
                                    {"name": "memberlist-tcp", "containerPort": MEMBERLIST_PORT, "protocol": "TCP"},
                                    {"name": "memberlist-udp", "containerPort": MEMBERLIST_PORT, "protocol": "UDP"},
                                ],
                                "livenessProbe": _probe(),
                                "readinessProbe": _probe(),
                                "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
                                # Root with one capability: raw sockets for ARP replies.
                                "securityContext": {**container_security, "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}},
                                "volumeMounts": [{"name": "memberlist", "mountPath": MEMBERLIST_KEY_DIR, "readOnly": True}],
                            }
                        ],
                        # The controller creates the memberlist key (METALLB_ML_SECRET_NAME).
                        "volumes": [{"name": "memberlist", "secret": {"secretName": MEMBERLIST_SECRET, "defaultMode": 0o644}}],
                        **({"imagePullSecrets": pulls} if pulls else {}),
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*crds, *rbac, controller]),
        )
        pool = KubernetesObject(
            f"{name}-pool",
            "IPAddressPool",
            metadata={"name": "vm-platform", "namespace": ns},
            spec={"addresses": [s.network.load_balancer_pool], "autoAssign": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *crds]),
        )
        advert: dict[str, Any] = {"ipAddressPools": ["vm-platform"]}
        if m.interfaces:
            advert["interfaces"] = list(m.interfaces)
        l2 = KubernetesObject(
            f"{name}-l2",
            "L2Advertisement",
            metadata={"name": "vm-platform", "namespace": ns},
            spec=advert,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*crds, pool]),
        )
        self.ready: list[pulumi.Resource] = [pool, l2, controller, speaker]
        self.register_outputs({})
