"""The private registry on the control-plane host, the images loaded into it, and the pause image.

Nodes pull only from this registry: every image the cluster runs (the pod-sandbox "pause"
image first) must be listed in registry.images, or it fails at pull time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from policy.rules.imageref import parse_image_ref

from .core import Reader, Secret
from .fields import Bool, Int, Items, Kind, SecretValue, Spec, Text, setting, spec_of

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

ABSOLUTE_PATH = r"/\S*"
IMAGES_CACHE = "~/.cache/vm-platform/images"  # where python -m tools.images writes the archives


def parse_image(ref: str) -> tuple[str, str, str] | None:
    """Split `repo:tag` or `repo@digest` (an image inside the private registry: no registry host,
    one of tag or digest) into (repo, tag, digest); None when malformed. The grammar is the
    policy pack's (policy/rules/imageref.py), so the stack and the pack read references alike."""
    ref_ = parse_image_ref(ref)
    if ref_.registry or not ref_.well_formed or bool(ref_.tag) == bool(ref_.digest):
        return None
    return ref_.repository, ref_.tag, ref_.digest


class Image(Kind):
    """An image reference inside the private registry, pinned: repo:tag (not latest) or repo@digest."""

    shape = "repo:tag"

    def ok(self, v: Any) -> bool:
        parsed = parse_image(v) if isinstance(v, str) else None
        return parsed is not None and parsed[1] != "latest"


def default_archive(image: str) -> str:
    """Where tools.images leaves an image's OCI archive (pause:3.10 -> .../pause-3.10.oci.tar)."""
    return f"{IMAGES_CACHE}/{image.replace('/', '-').replace(':', '-').replace('@', '-')}.oci.tar"


def expand(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path))


def _archive_examples(r: Reader, path: str) -> list[str]:
    name = r.get(path.rsplit(".", 1)[0] + ".name")
    guess = default_archive(name) if isinstance(name, str) else ""
    return [guess] if guess and os.path.isfile(expand(guess)) else []


@dataclass(frozen=True)
class RegistryImage:
    """An image pushed into the registry from an OCI archive on the machine running Pulumi."""

    name: str = setting(Image("an image name with a tag other than latest (repo:tag)"), doc="repo:tag inside the private registry", example="pause:3.10")
    archive: str = setting(
        Text(r"((/|~|\$).*)?", "an absolute path to an OCI archive on this machine (or empty when the image is pushed by other means)", shape="path"),
        "",
        "OCI archive on this machine (`python3 -m tools.images` builds pause and eureka-server); empty: pushed by other means",
        example=_archive_examples,
    )


@dataclass(frozen=True)
class RegistrySettings:
    """The registry: a systemd service on the control-plane host with storage on its disk."""

    port: int = setting(Int(1, 65535), 5000, "registry port on the control-plane host")
    tls: bool = setting(Bool(), True, "serve TLS with a certificate from the cluster CA", example=True)
    allow_plain_http: bool = setting(Bool(), False, "whether this stack may run a plain-http registry (tls false)")
    auth: bool = setting(Bool(), False, "htpasswd authentication (registryPassword then required)", example=True)
    username: str = setting(Text(r"[A-Za-z0-9._-]+", "a user name"), "", "registry user when auth is true", example="platform")
    password: Secret | None = setting(
        SecretValue("a password stored as a secret when registry.auth is true"),
        doc="registry password when registry.auth is true: `pulumi config set --secret registryPassword`",
        key="registryPassword",
        root=True,
        default=None,
    )
    storage_dir: str = setting(
        Text(ABSOLUTE_PATH, "an absolute path on the control-plane host", shape="path"), "/var/lib/registry", "image storage on the control-plane host"
    )
    binary: str = setting(
        Text(ABSOLUTE_PATH, "the absolute path of the registry (distribution) binary on the control-plane host", shape="path"),
        "/usr/bin/docker-registry",
        "the registry (distribution) binary on the control-plane host",
    )
    images: tuple[RegistryImage, ...] = setting(Items(RegistryImage), (), "images loaded into the registry (the pause image among them)", custom=True)


PAUSE_IMAGE = Spec(
    Image("the pod-sandbox image as repo:tag inside the private registry"), "pause:3.10", "pod-sandbox image (repo:tag); must be in registry.images"
)


def parse_registry(r: Reader) -> RegistrySettings:
    values = r.section(RegistrySettings, "registry")
    password = r.get("registryPassword")
    images = []
    for i in range(r.count("registry.images", spec_of(RegistrySettings, "images"))):
        path = f"registry.images[{i}]"
        img = r.section(RegistryImage, path)
        archive = img["archive"]
        if archive and r.check_files and not os.path.isfile(expand(archive)):
            r.problem(
                f"{path}.archive",
                "an existing OCI archive on this machine (python -m tools.images builds the platform's)",
                archive,
                *_archive_examples(r, f"{path}.archive"),
            )
            img["archive"] = None
        images.append(RegistryImage(**img))
    return RegistrySettings(**values, password=password if isinstance(password, Secret) else None, images=tuple(images))
