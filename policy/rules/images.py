"""Rules for container images: only the stack's private registry, pinned references, and a pull
policy that fits pinned images. References are split by `imageref.parse_image_ref`, the one
image parser of the project."""

from __future__ import annotations

from collections.abc import Iterator

from .common import ADVISORY, HIGH, LOW, MANDATORY, UNKNOWN, Config, declared, flag, get, strings
from .imageref import parse_image_ref
from .kube import RELIABILITY_TAGS, SECURITY_TAGS, Workload, containers, workload_rule


def _images(wl: Workload) -> Iterator[tuple[str, str]]:
    for label, c in containers(wl.pod_spec):
        image = get(c, "image")
        if isinstance(image, str):
            yield label, image


@workload_rule(
    "image-registry-allowed",
    "Container images come only from the stack's private registry.",
    HIGH,
    MANDATORY,
    "Push the image to the stack's private registry (registry.images in the stack config) and reference it as <registry>/<repository>:<tag>.",
    settings={
        "registry": {"type": "string", "default": "", "description": "host:port of the stack's private registry, e.g. 192.168.226.131:5000."},
        "additionalRegistries": strings("Other registries (host[:port]) this stack may pull from.", []),
    },
    required=("registry",),
    tags=SECURITY_TAGS,
)
def check_image_registry(wl: Workload, cfg: Config) -> Iterator[str]:
    """Images come only from the stack's private registry."""
    allowed = [r for r in [cfg.get("registry", ""), *cfg.get("additionalRegistries", [])] if r]
    if not allowed:
        yield "The rule's `registry` setting is empty, so no image can be verified. Set registry (host:port) in the policy pack config for this stack."
        return
    for label, image in _images(wl):
        registry = parse_image_ref(image).registry
        if registry not in allowed:
            where = f"registry {registry}" if registry else "Docker Hub (no registry host)"
            yield (
                f"{label.capitalize()} uses image {image} from {where}, but this stack pulls only from {', '.join(allowed)}. "
                f"Push the image to {allowed[0]} and reference it as {allowed[0]}/<repository>:<tag>."
            )


def _pinned(tag: str, digest: str, cfg: Config) -> bool:
    if digest:
        return True
    return bool(tag) and tag not in cfg.get("forbiddenTags", ["latest"]) and not cfg.get("requireDigest", False)


@workload_rule(
    "image-pinned",
    "Container images are pinned: a version tag other than latest, or a digest.",
    HIGH,
    MANDATORY,
    "Reference images as <registry>/<repository>:<version> or <registry>/<repository>@sha256:<digest>; never :latest or no tag.",
    settings={
        "requireDigest": flag("Require a digest (@sha256:...) rather than a tag.", False),
        "forbiddenTags": strings("Tags that are mutable by convention.", ["latest"]),
    },
    tags=RELIABILITY_TAGS,
)
def check_image_pinned(wl: Workload, cfg: Config) -> Iterator[str]:
    """Images are pinned: a tag other than latest, or a digest."""
    for label, image in _images(wl):
        ref = parse_image_ref(image)
        if _pinned(ref.tag, ref.digest, cfg):
            continue
        if cfg.get("requireDigest", False):
            yield f"{label.capitalize()} uses image {image} without a digest, and this stack requires digests. Reference it as <image>@sha256:<digest>."
        elif not ref.tag:
            yield f"{label.capitalize()} uses image {image} without a tag, which means latest. Pin it to a version tag or a digest (@sha256:...)."
        else:
            yield f"{label.capitalize()} uses image {image} with the mutable tag {ref.tag}. Pin it to a version tag or a digest (@sha256:...)."


@workload_rule(
    "image-pull-policy",
    "imagePullPolicy is Always, or IfNotPresent with a pinned tag or digest (never Never).",
    LOW,
    ADVISORY,
    "Keep imagePullPolicy: IfNotPresent with immutable, pinned tags (the platform's choice: pods restart without a registry round trip), or use Always.",
    settings={"allowedPolicies": strings("Pull policies this stack accepts.", ["Always", "IfNotPresent"])},
    tags=RELIABILITY_TAGS,
)
def check_image_pull_policy(wl: Workload, cfg: Config) -> Iterator[str]:
    """imagePullPolicy is Always, or IfNotPresent with a pinned tag or digest (never Never)."""
    allowed = cfg.get("allowedPolicies", ["Always", "IfNotPresent"])
    for label, c in containers(wl.pod_spec):
        image = get(c, "image")
        policy = get(c, "imagePullPolicy")
        if not isinstance(image, str) or policy is UNKNOWN:
            continue
        pinned = parse_image_ref(image).pinned
        effective = policy if isinstance(policy, str) and policy else ("IfNotPresent" if pinned else "Always")
        if effective not in allowed:
            yield f"{label.capitalize()} has imagePullPolicy {effective}, which this stack does not allow. Set imagePullPolicy to one of {', '.join(allowed)}."
        elif effective == "IfNotPresent" and not pinned:
            yield (
                f"{label.capitalize()} has imagePullPolicy IfNotPresent with the unpinned image {image}, so nodes keep running whatever they cached. "
                "Pin the image to a version tag or digest, or set imagePullPolicy to Always."
            )


RULES = declared(__name__)
