"""Facts about a stack in its policy config, derived from the stack's own settings.

policy/config/<stack>.json holds two kinds of values. Choices (enforcement levels, minReplicas,
allowNodePort, loadBalancerNamespaces...) are written by hand. Facts (the registry nodes pull
from, whether that registry may speak plain http, how many workers accept pods, whether the
network announces LoadBalancer addresses) are already in the stack file; they are written only
by this module, from `components.settings.parse_settings`, so each lives in one place.

    ./venv/bin/python -m policy.facts dev prod         # rewrite the facts from Pulumi.<stack>.yaml
    ./venv/bin/python -m policy.facts --check dev prod # exit 1 (and show the diff) when stale
    ./venv/bin/python -m policy.facts local --stack-file Pulumi.local.yaml [--out FILE]

The lab writes the facts of its `local` stack from the config it puts into its stack file:
`write_facts("local", config)` (a mapping as Pulumi.local.yaml's `config:` holds it; no pyyaml
needed on that path).

Why not derive them inside the pack: the pack sees resources, not the stack file. The registry,
plain http and the load balancer are what rules check resources against, so reading them from
the resources would approve whatever the program does; and whether the network has a load
balancer, or which workers are cordoned, is in no resource at all.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.settings import ConfigError, Secret, Settings, parse_settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "policy" / "config"
PROJECT = "vm-platform"
REGENERATE = "./venv/bin/python -m policy.facts"

# Secure values in a stack file are ciphertext, and dev/prod carry none: the facts never read a
# secret, so parsing uses stand-ins of the right shape.
_PLACEHOLDER_KEY = "placeholder for an OPENSSH PRIVATE KEY: policy facts never read the SSH key"
_PLACEHOLDER = "placeholder-policy-facts-never-read-it"
_SECRET_SCALARS = ("sshPrivateKey", "registryPassword")


def _metallb_namespace(s: Settings) -> list[str]:
    from components.metallb import NAMESPACE

    return [NAMESPACE] if s.network.load_balancer == "metallb" else []


@dataclass(frozen=True)
class Fact:
    """One setting of one rule that states a fact of the stack, and how the settings imply it."""

    rule: str
    key: str
    source: str
    """The stack config keys it comes from (for people reading the table)."""
    derive: Callable[[Settings], Any]


FACTS: tuple[Fact, ...] = (
    Fact("registry-plain-http", "allowPlainHttpRegistry", "registry.allowPlainHttp", lambda s: s.registry.allow_plain_http),
    Fact("image-registry-allowed", "registry", "controlPlane.address, registry.port", lambda s: s.registry_host),
    Fact("host-port-capacity", "schedulableWorkers", "workers minus maintenance.nodes", lambda s: len(s.schedulable_workers)),
    Fact("load-balancer-allowed", "loadBalancerAvailable", "network.loadBalancer is not none", lambda s: s.network.load_balancer != "none"),
    # MetalLB's speaker answers ARP on the hosts' segment: host network, NET_RAW, root; its
    # controller is one replica by design (no leader election: two would race to assign
    # addresses). Its namespace (Pod Security privileged) is exempt from exactly those rules.
    *(
        Fact(rule, "exemptNamespaces", "network.loadBalancer is metallb", _metallb_namespace)
        for rule in ("no-host-namespaces", "container-capabilities", "run-as-non-root", "run-as-non-root-group", "min-replicas")
    ),
)


class FactsError(Exception):
    """The stack's config does not parse, so no fact can be derived from it."""


def facts(settings: Settings) -> dict[str, dict[str, Any]]:
    """rule name -> {setting: value} for every fact, from parsed settings."""
    out: dict[str, dict[str, Any]] = {}
    for f in FACTS:
        out.setdefault(f.rule, {})[f.key] = f.derive(settings)
    return out


def _placeholders(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return Secret(_PLACEHOLDER)
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def config_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """The project's values of a stack config (keys with or without the `vm-platform:` prefix;
    other namespaces dropped), ready for parse_settings: secure values become Secret stand-ins,
    and paths on this machine (image archives, a local binaries directory) are replaced by ones
    that pass, since no fact depends on them and they may not exist yet (e.g. before images are
    built)."""
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, sep, name = key.rpartition(":")
        if sep and namespace != PROJECT:
            continue
        if isinstance(value, Mapping) and set(value) == {"secure"} and name not in _SECRET_SCALARS:
            continue  # a whole structured value stored as one secret (e.g. secrets): no fact reads it
        values[name] = _placeholders(copy.deepcopy(value))
    values["sshPrivateKey"] = Secret(_PLACEHOLDER_KEY)
    registry = values.get("registry")
    if isinstance(registry, dict):
        if registry.get("auth") is True:
            values["registryPassword"] = Secret(_PLACEHOLDER)
        for image in registry.get("images") or []:
            if isinstance(image, dict) and image.get("archive"):
                image["archive"] = ""
    binaries = values.get("binaries")
    if isinstance(binaries, dict) and binaries.get("localDir"):
        binaries["localDir"] = str(ROOT)
    _stand_in_referenced_secrets(values)
    return values


def _stand_in_referenced_secrets(values: dict[str, Any]) -> None:
    """A Secret a service reads (services.<n>.secretEnv: <secret>/<key>) may be set as secret
    config after the stack file is written (tools/deploy-local does so) or be stored whole as
    one secret: no fact reads it, so a stand-in takes its place when it is not there."""
    services = values.get("services")
    if not isinstance(services, Mapping):
        return
    given = "secrets" in values
    secrets = values.setdefault("secrets", {})
    if not isinstance(secrets, dict):
        return  # malformed: parse_settings names it
    for svc in services.values():
        refs = svc.get("secretEnv") if isinstance(svc, Mapping) else None
        for ref in (refs or {}).values() if isinstance(refs, Mapping) else ():
            name, _, key = str(ref).partition("/")
            entry = secrets.setdefault(name, {})
            if isinstance(entry, dict):
                entry.setdefault("namespace", svc.get("namespace") or (values.get("eureka") or {}).get("namespace") or "platform")
                data = entry.setdefault("data", {})
                if isinstance(data, dict):
                    data.setdefault(key, Secret(_PLACEHOLDER))
    if not secrets and not given:
        del values["secrets"]


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a Pulumi.<stack>.yaml."""
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    config = doc.get("config") if isinstance(doc, dict) else None
    return dict(config) if isinstance(config, Mapping) else {}


def settings_for(stack: str, config: Mapping[str, Any] | None = None) -> Settings:
    """The parsed settings of `stack`: from `config`, or from Pulumi.<stack>.yaml."""
    raw = config if config is not None else read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    try:
        return parse_settings(config_values(raw), stack)
    except ConfigError as e:
        raise FactsError(f"{stack}: the stack config does not parse, so its policy facts cannot be derived.\n{e}") from None


def with_facts(policy_config: Mapping[str, Mapping[str, Any]], derived: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The policy config with each fact set (choices and key order kept)."""
    out = {rule: dict(values) for rule, values in policy_config.items()}
    for rule, values in derived.items():
        out.setdefault(rule, {}).update(values)
    return out


def render(policy_config: Mapping[str, Any]) -> str:
    return json.dumps(policy_config, indent=2) + "\n"


def expected_text(stack: str, config: Mapping[str, Any] | None = None, base: Path | None = None) -> str:
    """What the policy config file of `stack` must hold: `base` (default policy/config/<stack>.json)
    with the facts the stack config implies."""
    base = base or CONFIG_DIR / f"{stack}.json"
    return render(with_facts(json.loads(base.read_text()), facts(settings_for(stack, config))))


def write_facts(stack: str, config: Mapping[str, Any] | None = None, *, base: Path | None = None, out: Path | None = None) -> bool:
    """Write the facts of `stack` into its policy config (choices taken from `base`, written to
    `out`, both default policy/config/<stack>.json). Returns whether the file changed."""
    base = base or CONFIG_DIR / f"{stack}.json"
    out = out or base
    text = expected_text(stack, config, base)
    if out.exists() and out.read_text() == text:
        return False
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return True


def stale(stack: str, config: Mapping[str, Any] | None = None, base: Path | None = None, command: str = "") -> str | None:
    """None when the policy config already holds the facts; otherwise what differs and the
    command that rewrites it."""
    base = base or CONFIG_DIR / f"{stack}.json"
    want, have = expected_text(stack, config, base), base.read_text()
    if want == have:
        return None
    shown = base.relative_to(ROOT) if base.is_relative_to(ROOT) else base
    diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), f"{shown} (committed)", f"{shown} (from the stack config)"))
    return f"{shown} does not hold the facts of the {stack} stack config. Regenerate it: {command or f'{REGENERATE} {stack}'}\n{diff}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policy.facts", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("stacks", nargs="+", help="stack names (dev, prod, local)")
    parser.add_argument("--check", action="store_true", help="only report stale configs (exit 1), write nothing")
    parser.add_argument("--stack-file", type=Path, help="read this stack file instead of Pulumi.<stack>.yaml (one stack only)")
    parser.add_argument("--out", type=Path, help="write here instead of policy/config/<stack>.json (one stack only)")
    args = parser.parse_args(argv)
    if (args.stack_file or args.out) and len(args.stacks) != 1:
        parser.error("--stack-file and --out take one stack")
    status = 0
    for stack in args.stacks:
        config = read_stack_file(args.stack_file) if args.stack_file else None
        try:
            if args.check:
                problem = stale(stack, config, args.out)
                if problem:
                    print(problem, file=sys.stderr)
                    status = 1
            elif write_facts(stack, config, out=args.out):
                print(f"{args.out or CONFIG_DIR / f'{stack}.json'}: facts rewritten from the {stack} stack config")
        except FactsError as e:
            print(e, file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
