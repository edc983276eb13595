"""The pack against its peers' own test fixtures: Fairwinds Polaris (test/checks/<check>/
success*.yaml, failure*.yaml) and the Kyverno policy library (<policy>/.kyverno-test/
kyverno-test.yaml with its resource files and expected pass/fail per resource).

    python -m tools.peers --polaris /tmp/polaris --kyverno /tmp/kyverno-policies [--details] [--json out.json]

Their files are read from the checkouts given on the command line, never copied into this
repository. Every fixture object becomes one resource of a throwaway Pulumi project whose
Kubernetes provider only renders YAML (renderYamlToDirectory: no cluster), previewed by the real
engine with the pack (every rule advisory, its default settings). A peer's check is mapped to the
pack rules (and, where one rule covers several checks, the words of its message) in `POLARIS` and
`KYVERNO`; a fixture counts as flagged when a mapped rule reports on one of its target objects.
Stack rules judge each fixture file on its own: a second copy of every file that a stack rule is
mapped to is previewed in namespaces of its own (`<namespace>--g<n>`), so budgets and accounts of
one file never meet the workloads of another.

Per check: true positives (the peer fails it, the pack flags it), misses (the peer fails it, the
pack does not), false positives (the peer passes it, the pack flags it) and agreements on passes.
A disagreement the README explains as a deliberate choice is listed under `explained` with its
reason; `--details` prints every disagreement with the pack's messages.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .common import ROOT

PROJECT = "vmp-peers"
STACK = "peers"


@dataclass(frozen=True)
class Check:
    """A peer's check and the pack rules that answer it. `words`: only messages containing one of
    them count (one pack rule covers several peer checks). `explained`: fnmatch patterns of case
    ids whose disagreement is a deliberate choice, with the reason (README.md, "Peers")."""

    peer: str
    name: str  # Polaris check ID, or the Kyverno policy's directory (e.g. pod-security/baseline/disallow-proc-mount)
    rules: tuple[str, ...]
    words: tuple[str, ...] = ()
    explained: Mapping[str, str] = field(default_factory=dict)
    rule_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Kyverno: the words per rule of the policy, when its fixtures are tested rule by rule."""


def _c(
    peer: str,
    name: str,
    *rules: str,
    words: tuple[str, ...] = (),
    explained: Mapping[str, str] | None = None,
    rule_words: Mapping[str, tuple[str, ...]] | None = None,
) -> Check:
    return Check(peer, name, rules, words, dict(explained or {}), dict(rule_words or {}))


# Reasons for the deliberate differences (README.md, "Peers").
RESTRICTED_CAPS = "the pack holds containers to Pod Security restricted: capabilities.drop ALL and nothing added unless allowedCapabilities lists it"
CLUSTER_ADMIN_LIKE = (
    "Polaris also judges the bound role's rules (all verbs on *, i.e. cluster-admin by another name); the pack flags such a role itself "
    "(rbac-no-wildcards), and the binding only by the name cluster-admin"
)
DEFAULT_DENY = "the pack asks for a default-deny policy per namespace; the peer for a policy that selects each workload (with allow rules)"
MOCKED_PDB = "its budget exists only in the test's mocked API lookup (values.yaml), not among the fixture's objects"
PULL_POLICY = (
    "IfNotPresent with a pinned tag or digest is the platform's choice (README, imagePullPolicy); an image without a tag defaults to Always "
    "(image-pinned flags the missing tag)"
)
ONE_REPLICA = (
    "a single replica (replicas unset) needs no budget or spread here: min-replicas asks for 2, and a budget over 1 replica could never allow an eviction"
)


POLARIS: tuple[Check, ...] = (
    _c(
        "polaris",
        "automountServiceAccountToken",
        "service-account-token-automount",
        explained={
            "*failure.all_true.yaml": "true on the pod with its own ServiceAccount is an explicit choice (a pod that calls the API)",
            "*failure.pod_true_serviceaccount_false.yaml": "true on the pod with its own ServiceAccount is an explicit choice (a pod that calls the API)",
            "*success.serviceaccount.yaml": "the pod itself must say false: a resource rule does not see the ServiceAccount, and the pod's field overrides it",
        },
    ),
    _c("polaris", "clusterrolebindingClusterAdmin", "no-cluster-admin-binding", explained={"*failure.[!d]*": CLUSTER_ADMIN_LIKE}),
    _c("polaris", "rolebindingClusterAdminClusterRole", "no-cluster-admin-binding", explained={"*failure.*": CLUSTER_ADMIN_LIKE}),
    _c("polaris", "rolebindingClusterAdminRole", "no-cluster-admin-binding", explained={"*failure.*": CLUSTER_ADMIN_LIKE}),
    _c("polaris", "cpuLimitsMissing", "resource-requests-limits", words=("limits.cpu",)),
    _c("polaris", "cpuRequestsMissing", "resource-requests-limits", words=("requests.cpu",)),
    _c("polaris", "memoryLimitsMissing", "resource-requests-limits", words=("limits.memory",)),
    _c("polaris", "memoryRequestsMissing", "resource-requests-limits", words=("requests.memory",)),
    _c("polaris", "dangerousCapabilities", "container-capabilities", words=("adds the capabilities",)),
    _c("polaris", "insecureCapabilities", "container-capabilities", words=("does not drop all",), explained={"*success*": RESTRICTED_CAPS}),
    _c("polaris", "deploymentMissingReplicas", "min-replicas"),
    _c("polaris", "hostIPCSet", "no-host-namespaces", words=("hostIPC",)),
    _c("polaris", "hostNetworkSet", "no-host-namespaces", words=("hostNetwork",)),
    _c("polaris", "hostPIDSet", "no-host-namespaces", words=("hostPID",)),
    _c("polaris", "hostPathSet", "no-host-path-volumes"),
    _c("polaris", "hostPortSet", "no-host-ports"),
    _c(
        "polaris",
        "linuxHardening",
        "seccomp-profile",
        explained={"*success*": "a seccomp profile is required (Pod Security restricted); AppArmor, SELinux or dropped capabilities do not replace it"},
    ),
    _c("polaris", "livenessProbeMissing", "probes-present", words=("livenessProbe",)),
    _c("polaris", "readinessProbeMissing", "probes-present", words=("readinessProbe",)),
    _c("polaris", "missingNetworkPolicy", "namespace-default-deny", explained={"*success*": DEFAULT_DENY}),
    _c("polaris", "missingPodDisruptionBudget", "pdb-for-replicated-workloads", words=("no PodDisruptionBudget",), explained={"*failure*": ONE_REPLICA}),
    _c("polaris", "notReadOnlyRootFilesystem", "read-only-root-filesystem"),
    _c("polaris", "pdbDisruptionsIsZero", "pdb-for-replicated-workloads", words=("never be evicted", "may ever be evicted")),
    _c("polaris", "privilegeEscalationAllowed", "no-privilege-escalation"),
    _c("polaris", "procMount", "no-unmasked-proc-mount"),
    _c("polaris", "pullPolicyNotAlways", "image-pull-policy", explained={"*failure*": PULL_POLICY}),
    _c("polaris", "runAsPrivileged", "no-privileged-containers"),
    _c("polaris", "runAsRootAllowed", "run-as-non-root"),
    _c("polaris", "sensitiveContainerEnvVar", "no-secrets-in-env"),
    _c("polaris", "tagNotSpecified", "image-pinned"),
    _c("polaris", "topologySpreadConstraint", "replica-spread", explained={"*failure*": ONE_REPLICA}),
)

KYVERNO: tuple[Check, ...] = (
    _c(
        "kyverno",
        "pod-security/baseline/disallow-capabilities",
        "container-capabilities",
        words=("adds the capabilities",),
        explained={"*:*/good*": RESTRICTED_CAPS},
    ),
    _c("kyverno", "pod-security/baseline/disallow-host-namespaces", "no-host-namespaces"),
    _c("kyverno", "pod-security/baseline/disallow-host-path", "no-host-path-volumes"),
    _c("kyverno", "pod-security/baseline/disallow-host-ports", "no-host-ports"),
    _c("kyverno", "pod-security/baseline/disallow-privileged-containers", "no-privileged-containers"),
    _c("kyverno", "pod-security/baseline/disallow-proc-mount", "no-unmasked-proc-mount"),
    _c(
        "kyverno",
        "pod-security/baseline/restrict-seccomp",
        "seccomp-profile",
        explained={"*:*/good*": "baseline accepts an unset profile; the pack wants RuntimeDefault or Localhost (restricted)"},
    ),
    _c("kyverno", "pod-security/baseline/restrict-sysctls", "no-unsafe-sysctls"),
    _c(
        "kyverno",
        "pod-security/restricted/disallow-capabilities-strict",
        "container-capabilities",
        rule_words={"require-drop-all": ("does not drop all",), "adding-capabilities-strict": ("adds the capabilities",)},
        explained={
            "*:*/addcap-good*": "restricted allows adding NET_BIND_SERVICE; the pack's allowedCapabilities is empty by default (no platform image binds a port below 1024)"
        },
    ),
    _c("kyverno", "pod-security/restricted/disallow-privilege-escalation", "no-privilege-escalation"),
    _c("kyverno", "pod-security/restricted/require-run-as-non-root-user", "run-as-non-root", words=("runs as user 0",)),
    _c("kyverno", "pod-security/restricted/require-run-as-nonroot", "run-as-non-root"),
    _c("kyverno", "pod-security/restricted/restrict-seccomp-strict", "seccomp-profile"),
    _c(
        "kyverno",
        "best-practices/disallow-cri-sock-mount",
        "no-host-path-volumes",
        explained={"*:*/good*": "every hostPath is refused, not only runtime sockets"},
    ),
    _c("kyverno", "best-practices/disallow-default-namespace", "no-default-namespace"),
    _c("kyverno", "best-practices/disallow-latest-tag", "image-pinned"),
    _c("kyverno", "best-practices/require-drop-all", "container-capabilities", words=("does not drop all",)),
    _c(
        "kyverno",
        "best-practices/require-drop-cap-net-raw",
        "container-capabilities",
        words=("does not drop all",),
        explained={"*:*/drop-good*": RESTRICTED_CAPS},
    ),
    _c(
        "kyverno",
        "best-practices/require-pod-requests-limits",
        "resource-requests-limits",
        explained={"*:*/good*": "limits.cpu is required too by default (requireCpuLimit); Kyverno asks for memory limits only"},
    ),
    _c(
        "kyverno",
        "best-practices/require-probes",
        "probes-present",
        explained={"*:*/good*": "both liveness and readiness are required; Kyverno accepts any one probe (startup alone too)"},
    ),
    _c("kyverno", "best-practices/require-ro-rootfs", "read-only-root-filesystem"),
    _c("kyverno", "best-practices/restrict-node-port", "no-node-port"),
    _c("kyverno", "best-practices/restrict-service-external-ips", "no-external-ips"),
    _c("kyverno", "best-practices/check-deprecated-apis", "deprecated-api-version"),
    _c("kyverno", "other/prevent-bare-pods", "no-bare-pods"),
    _c(
        "kyverno",
        "other/require-non-root-groups",
        "run-as-non-root-group",
        rule_words={"check-runasgroup": ("runAsGroup",), "check-supplementalgroups": ("supplementalGroups",), "check-fsgroup": ("fsGroup",)},
    ),
    _c("kyverno", "other/restrict-automount-sa-token", "service-account-token-automount"),
    _c("kyverno", "other/restrict-binding-clusteradmin", "no-cluster-admin-binding"),
    _c("kyverno", "other/restrict-wildcard-verbs", "rbac-no-wildcards", words=("verbs",)),
    _c("kyverno", "other/restrict-wildcard-resources", "rbac-no-wildcards", words=("resources",)),
    _c("kyverno", "other/restrict-loadbalancer", "load-balancer-allowed"),
    _c(
        "kyverno",
        "other/require-pdb",
        "pdb-for-replicated-workloads",
        explained={"*nginx-deploy-pass": MOCKED_PDB},
    ),
    _c("kyverno", "other/pdb-maxunavailable", "pdb-for-replicated-workloads"),
    _c(
        "kyverno",
        "other/require-reasonable-pdbs",
        "pdb-for-replicated-workloads",
        explained={
            "*:PodDisruptionBudget/bad-*": "a house rule on percentages (minAvailable <= 50%, maxUnavailable >= 50%); the pack refuses only budgets that allow no eviction"
        },
    ),
    _c("kyverno", "other/pdb-minavailable", "pdb-for-replicated-workloads", explained={"*/good-pdb": MOCKED_PDB}),
    _c("kyverno", "other/require-deployments-have-multiple-replicas", "min-replicas"),
    _c(
        "kyverno",
        "other/topologyspreadconstraints-policy",
        "replica-spread",
        explained={
            "*:StatefulSet/*/badss0[12]": "one constraint on hostname or zone is enough (the platform's hosts carry no zone labels); the policy wants both"
        },
    ),
    _c("kyverno", "other/require-netpol", "namespace-default-deny"),
    _c(
        "kyverno",
        "other/disallow-secrets-from-env-vars",
        "no-secrets-in-env",
        explained={"*": "secretKeyRef and envFrom.secretRef are allowed by default (allowSecretKeyRef: true); a stack may forbid them"},
    ),
)

# The pack's one required setting; no mapped check judges registries.
PACK_SETTINGS: dict[str, dict[str, Any]] = {"image-registry-allowed": {"registry": "registry.invalid"}}


# ---------------------------------------------------------------------------------------------
# Fixtures


@dataclass
class Group:
    """One fixture file (Polaris) or one policy's resource files (Kyverno): objects that are
    judged together."""

    id: str
    check: Check
    objects: list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One expectation: the peer fails (or passes) the objects `targets` of `group`."""

    id: str
    group: str
    targets: tuple[int, ...]
    fails: bool
    words: tuple[str, ...] = ()
    """Only messages with one of these words count (the check's own words otherwise)."""


def _documents(path: Path) -> list[dict[str, Any]]:
    out = []
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out += [d for d in doc.get("items") or [] if isinstance(d, dict)]
        elif isinstance(doc, dict) and doc.get("kind") and doc.get("apiVersion"):
            out.append(doc)
    return out


def polaris_fixtures(root: Path, checks: Sequence[Check] = POLARIS) -> tuple[list[Group], list[Case]]:
    """test/checks/<check>/success*.yaml and failure*.yaml: the whole file passes or fails."""
    groups, cases = [], []
    for check in checks:
        folder = root / "test" / "checks" / check.name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no Polaris fixtures for {check.name} (is {root} a Polaris checkout?)")
        for path in sorted(folder.glob("*.y*ml")):
            outcome = path.name.split(".", 1)[0].split("-", 1)[0]
            if outcome not in ("success", "failure"):
                continue  # e.g. mutated.yaml: what Polaris's mutation writes
            objects = _documents(path)
            gid = f"polaris/{check.name}/{path.name}"
            groups.append(Group(gid, check, objects))
            cases.append(Case(gid, gid, tuple(range(len(objects))), outcome == "failure"))
    return groups, cases


def kyverno_fixtures(root: Path, checks: Sequence[Check] = KYVERNO) -> tuple[list[Group], list[Case]]:
    """<policy>/.kyverno-test/kyverno-test.yaml: per resource (kind and name, or namespace/name),
    pass or fail for each rule of the policy. A resource fails the policy when any rule fails it,
    passes when a rule passes it and none fails; `skip` alone is no expectation."""
    groups, cases = [], []
    for check in checks:
        test = root / check.name / ".kyverno-test" / "kyverno-test.yaml"
        if not test.is_file():
            raise FileNotFoundError(f"{test}: no Kyverno test for {check.name} (is {root} a kyverno/policies checkout?)")
        spec = yaml.safe_load(test.read_text())
        objects = [o for f in spec.get("resources") or [] for o in _documents(test.parent / f)]
        gid = f"kyverno/{check.name}"
        groups.append(Group(gid, check, objects))
        verdicts: dict[tuple[str, str, str], bool] = {}
        for result in spec.get("results") or []:
            outcome = result.get("result")
            if outcome not in ("pass", "fail") or result.get("patchedResource") or result.get("patchedResources") or result.get("generatedResource"):
                continue  # skip, or a mutation / generation (no validation to compare)
            rule = result.get("rule", "") if check.rule_words else ""
            names = result.get("resources") or ([result["resource"]] if result.get("resource") else [])
            for name in names:
                key = (result.get("kind", ""), name, rule)
                verdicts[key] = verdicts.get(key, False) or outcome == "fail"
        for (kind, name, rule), fails in sorted(verdicts.items()):
            targets = tuple(i for i, o in enumerate(objects) if _is(o, kind, name))
            if targets:
                cases.append(Case(f"{gid}:{kind}/{name}" + (f"#{rule}" if rule else ""), gid, targets, fails, check.rule_words.get(rule, ())))
    return groups, cases


def _is(obj: Mapping[str, Any], kind: str, name: str) -> bool:
    meta = obj.get("metadata") or {}
    ns, _, short = name.rpartition("/")
    return (not kind or obj.get("kind") == kind) and meta.get("name") == short and (not ns or (meta.get("namespace") or "default") == ns)


# ---------------------------------------------------------------------------------------------
# The engine run


def type_token(obj: Mapping[str, Any]) -> str:
    """kubernetes:apps/v1:Deployment for apps/v1 Deployment; core/v1 for the core group (v1)."""
    api = str(obj["apiVersion"])
    return f"kubernetes:{api if '/' in api else 'core/' + api}:{obj['kind']}"


def _isolated(obj: dict[str, Any], suffix: str) -> dict[str, Any]:
    """A copy in a namespace of its own: `<namespace or default>--<suffix>`."""
    out = json.loads(json.dumps(obj))
    meta = out.setdefault("metadata", {})
    if out.get("kind") == "Namespace":
        meta["name"] = f"{meta.get('name', 'default')}--{suffix}"
    elif "namespace" in meta or out.get("kind") not in _CLUSTER_SCOPED:
        meta["namespace"] = f"{meta.get('namespace') or 'default'}--{suffix}"
    return out


_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume", "StorageClass", "PriorityClass", "Node"}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:120]


def plan(groups: Sequence[Group], stack_rules: set[str]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, int, bool]]]:
    """The resources to register and resource name -> (group id, object index, isolated copy)."""
    resources: list[dict[str, Any]] = []
    where: dict[str, tuple[str, int, bool]] = {}
    for g, group in enumerate(groups):
        copies = [False] + ([True] if set(group.check.rules) & stack_rules else [])
        for isolated in copies:
            for i, obj in enumerate(group.objects):
                name = f"{'s' if isolated else 'r'}{g}-{i}-{_safe(str((obj.get('metadata') or {}).get('name', 'x')))}"
                props = _isolated(obj, f"g{g}") if isolated else obj
                resources.append({"type": type_token(obj), "name": name, "props": props})
                where[name] = (group.id, i, isolated)
    return resources, where


PROGRAM = '''"""Registers the fixture objects with a render-only Kubernetes provider (no cluster)."""
import json
from pathlib import Path

import pulumi
import pulumi_kubernetes

here = Path(__file__).parent
provider = pulumi_kubernetes.Provider("render", render_yaml_to_directory=str(here / "rendered"))
opts = pulumi.ResourceOptions(provider=provider, version=pulumi_kubernetes._utilities.get_version())
for r in json.loads((here / "objects.json").read_text()):
    pulumi.CustomResource(r["type"], r["name"], r["props"], opts)
'''


def pack_rules() -> list[Any]:
    """The pack's rules (policy/rules, importable with the pack's directory on the path)."""
    if str(ROOT / "policy") not in sys.path:
        sys.path.insert(0, str(ROOT / "policy"))
    from rules import ALL_RULES

    return list(ALL_RULES)


def pack_config(path: Path) -> Path:
    """Every rule advisory (a preview then reports all and never stops), default settings."""
    path.write_text(json.dumps({r.name: {"enforcementLevel": "advisory", **PACK_SETTINGS.get(r.name, {})} for r in pack_rules()}, indent=1))
    return path


def preview(resources: list[dict[str, Any]], log: Any = sys.stderr) -> tuple[list[dict[str, str]], float]:
    """(policy violations as {policy, urn, message}, seconds) of a real-engine preview."""
    from pulumi import automation as auto

    from .automation import engine_env

    work = Path(tempfile.mkdtemp(prefix="vmp-peers-"))
    (work / "state").mkdir()
    project = work / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime:\n  name: python\n  options:\n    virtualenv: {ROOT / 'venv'}\n")
    (project / "__main__.py").write_text(PROGRAM)
    (project / "objects.json").write_text(json.dumps(resources))
    engine_dir, env = engine_env(work / "state")
    command = auto.PulumiCommand(root=str(engine_dir.parent), skip_version_check=True)
    opts = auto.LocalWorkspaceOptions(work_dir=str(project), env_vars=env, pulumi_command=command)
    stack = auto.create_or_select_stack(STACK, work_dir=str(project), opts=opts)
    found: list[dict[str, str]] = []

    def on_event(ev: auto.EngineEvent) -> None:
        if ev.policy_event:
            found.append({"policy": ev.policy_event.policy_name, "urn": ev.policy_event.resource_urn or "", "message": ev.policy_event.message})

    print(f"previewing {len(resources)} fixture objects with the pack ...", file=log)
    start = time.monotonic()
    stack.preview(on_event=on_event, policy_packs=[str(ROOT / "policy")], policy_pack_configs=[str(pack_config(work / "pack.json"))], color="never")
    return found, time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Score:
    check: Check
    tp: list[str] = field(default_factory=list)
    miss: list[str] = field(default_factory=list)
    fp: list[str] = field(default_factory=list)
    tn: list[str] = field(default_factory=list)
    messages: dict[str, list[str]] = field(default_factory=dict)

    def explanation(self, case_id: str) -> str | None:
        return next((why for pattern, why in self.check.explained.items() if fnmatch.fnmatchcase(case_id, pattern)), None)

    def unexplained(self) -> list[str]:
        return [c for c in self.miss + self.fp if self.explanation(c) is None]


def flagged(
    groups: Sequence[Group], violations: Iterable[dict[str, str]], where: Mapping[str, tuple[str, int, bool]], stack_rules: set[str]
) -> dict[tuple[str, int], list[tuple[str, str]]]:
    """(group id, object index) -> (rule, message) of the mapped rules on it. Resource rules count on the
    plain copy, stack rules on the isolated one."""
    checks = {g.id: g.check for g in groups}
    out: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for v in violations:
        name = v["urn"].rsplit("::", 1)[-1]
        if name not in where:
            continue
        gid, index, isolated = where[name]
        check = checks[gid]
        if v["policy"] not in check.rules or isolated != (v["policy"] in stack_rules):
            continue
        body = v["message"].split("\n", 1)[-1]  # the engine puts the rule's description first
        out.setdefault((gid, index), []).append((v["policy"], body))
    return out


def score(groups: Sequence[Group], cases: Sequence[Case], hits: Mapping[tuple[str, int], list[tuple[str, str]]]) -> list[Score]:
    by_group = {g.id: g for g in groups}
    scores: dict[str, Score] = {}
    for c in cases:
        check = by_group[c.group].check
        s = scores.setdefault(f"{check.peer}/{check.name}", Score(check))
        words = c.words or check.words
        messages = [f"{rule}: {m}" for t in c.targets for rule, m in hits.get((c.group, t), []) if not words or any(w in m for w in words)]
        s.messages[c.id] = messages
        bucket = (s.tp if messages else s.miss) if c.fails else (s.fp if messages else s.tn)
        bucket.append(c.id)
    return list(scores.values())


def table(scores: Sequence[Score]) -> Iterator[str]:
    yield "| peer | check | pack rule(s) | fail cases | true positives | misses | false positives | pass cases agreed | unexplained |"
    yield "|---|---|---|---|---|---|---|---|---|"
    totals: dict[str, list[int]] = {}
    for s in scores:
        row = [len(s.tp) + len(s.miss), len(s.tp), len(s.miss), len(s.fp), len(s.tn), len(s.unexplained())]
        t = totals.setdefault(s.check.peer, [0] * len(row))
        for i, n in enumerate(row):
            t[i] += n
        yield f"| {s.check.peer} | `{s.check.name}` | {', '.join(f'`{r}`' for r in s.check.rules)} | " + " | ".join(map(str, row)) + " |"
    for peer, t in totals.items():
        yield f"| {peer} | **all** | | " + " | ".join(f"**{n}**" for n in t) + " |"


def details(scores: Sequence[Score]) -> Iterator[str]:
    for s in scores:
        for kind, ids in (("miss", s.miss), ("false positive", s.fp)):
            for case_id in ids:
                why = s.explanation(case_id)
                yield f"{kind}: {case_id}" + (f"  [explained: {why}]" if why else "  [UNEXPLAINED]")
                for m in s.messages.get(case_id, []):
                    yield f"    {m[:300]}"


def run(polaris: Path | None, kyverno: Path | None, log: Any = sys.stderr) -> tuple[list[Score], float]:
    groups: list[Group] = []
    cases: list[Case] = []
    for root, load in ((polaris, polaris_fixtures), (kyverno, kyverno_fixtures)):
        if root is not None:
            g, c = load(root)
            groups += g
            cases += c
    stack_rules = {r.name for r in pack_rules() if r.stack}
    resources, where = plan(groups, stack_rules)
    violations, seconds = preview(resources, log)
    return score(groups, cases, flagged(groups, violations, where, stack_rules)), seconds


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.peers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--polaris", type=Path, help="a checkout of FairwindsOps/polaris")
    ap.add_argument("--kyverno", type=Path, help="a checkout of kyverno/policies")
    ap.add_argument("--details", action="store_true", help="print every disagreement with the pack's messages")
    ap.add_argument("--json", type=Path, help="write the per-case results here")
    args = ap.parse_args(argv)
    if args.polaris is None and args.kyverno is None:
        ap.error("give --polaris and/or --kyverno")
    scores, seconds = run(args.polaris, args.kyverno)
    print("\n".join(table(scores)))
    if args.details:
        print("\n".join(details(scores)))
    if args.json:
        args.json.write_text(
            json.dumps([{"check": s.check.name, "peer": s.check.peer, "tp": s.tp, "miss": s.miss, "fp": s.fp, "tn": s.tn} for s in scores], indent=1)
        )
    unexplained = sum(len(s.unexplained()) for s in scores)
    print(f"\npreview {seconds:.1f} s; {unexplained} unexplained disagreement(s)", file=sys.stderr)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
