"""The platform's own cluster services: cluster DNS (CoreDNS) and the LoadBalancer (MetalLB).

Their images are built by `python3 -m tools.images` at the versions pinned in toolchain.toml
([images]); the defaults here are read from there, so a version is written once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .core import Reader
from .fields import Int, Names, Text, setting
from .registry import ABSOLUTE_PATH, IMAGES_CACHE, Image

TOOLCHAIN = Path(__file__).resolve().parents[2] / "toolchain.toml"
UPSTREAM = r"/\S+|(\d{1,3}\.){3}\d{1,3}(:\d{1,5})?"


@cache
def image_pins() -> dict[str, str]:
    with open(TOOLCHAIN, "rb") as f:
        return dict(tomllib.load(f)["images"])


def coredns_image() -> str:
    return f"coredns:{image_pins()['coredns'].removeprefix('v')}"


def eureka_image() -> str:
    return f"eureka-server:{image_pins()['eureka-server']}"


def example_image(next_version: bool = False) -> str:
    """The shipped example service's image; next_version: the rolling-update target."""
    return f"example-service:{image_pins()['example-service-next' if next_version else 'example-service']}"


def metallb_image(binary: str) -> str:
    return f"metallb-{binary}:{image_pins()['metallb']}"


def metallb_manifests() -> str:
    """Where tools.images leaves MetalLB's CRDs and RBAC, taken from its module."""
    return f"{IMAGES_CACHE}/metallb-{image_pins()['metallb']}.manifests.yaml"


_IMAGE = Image("an image in the private registry as repo:tag (not latest) or repo@sha256:...")


@dataclass(frozen=True)
class DnsSettings:
    """Cluster DNS: CoreDNS at network.clusterDns, answering for network.clusterDomain."""

    image: str = setting(_IMAGE, coredns_image(), "CoreDNS image in the private registry; must be in registry.images")
    replicas: int = setting(Int(1, 20), 2, "CoreDNS replicas (spread over the nodes; a PodDisruptionBudget keeps one)")
    upstream: tuple[str, ...] = setting(
        Names(UPSTREAM, "resolver addresses (a.b.c.d or a.b.c.d:port) or a resolv.conf path", shape="list of resolvers"),
        ("/etc/resolv.conf",),
        "where names outside the cluster are forwarded: the hosts' resolvers (/etc/resolv.conf) or addresses; [] = none (offline)",
    )


@dataclass(frozen=True)
class MetalLBSettings:
    """MetalLB in L2 mode (network.loadBalancer: metallb): announces network.loadBalancerPool."""

    controller_image: str = setting(_IMAGE, metallb_image("controller"), "MetalLB controller image; must be in registry.images")
    speaker_image: str = setting(_IMAGE, metallb_image("speaker"), "MetalLB speaker image; must be in registry.images")
    manifests: str = setting(
        Text(r"[~/$]\S*", "an absolute path (~ allowed)", shape="path"),
        metallb_manifests(),
        "MetalLB's CRDs and RBAC as python3 -m tools.images takes them from its module",
    )
    interfaces: tuple[str, ...] = setting(
        Names(r"[-_.a-zA-Z0-9@]{1,15}", "interface names", shape="list of interface names"),
        (),
        "host interfaces the speakers announce on ([] = every interface); pin it on hosts with several NICs",
    )


def parse_dns(r: Reader) -> DnsSettings:
    return DnsSettings(**r.section(DnsSettings, "dns"))


def parse_metallb(r: Reader) -> MetalLBSettings:
    return MetalLBSettings(**r.section(MetalLBSettings, "metallb"))


__all__ = ["ABSOLUTE_PATH", "DnsSettings", "MetalLBSettings", "parse_dns", "parse_metallb"]
