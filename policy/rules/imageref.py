"""Image references (`[registry/]repository[:tag][@digest]`), parsed one way for the project.

Standard library only, and importable without the policy SDK (`rules/__init__.py` loads the
rule modules lazily), so components/settings can use the same parser as the pack:
`from policy.rules.imageref import parse_image_ref`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ImageRef", "parse_image_ref"]

# The grammar of github.com/distribution/reference (what registries and containerd accept).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_REGISTRY = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True)
class ImageRef:
    """The parts of an image reference; each is '' when the reference does not name it."""

    registry: str
    """host[:port]; '' for a reference without a registry host (Docker Hub)."""
    repository: str
    tag: str
    digest: str

    @property
    def pinned(self) -> bool:
        """A digest, or a tag other than latest (no tag at all means latest)."""
        return bool(self.digest) or (bool(self.tag) and self.tag != "latest")

    @property
    def well_formed(self) -> bool:
        """Whether every part follows the reference grammar (registries refuse the rest)."""
        return (
            (not self.registry or bool(_REGISTRY.match(self.registry)))
            and bool(_REPOSITORY.match(self.repository))
            and (not self.tag or bool(_TAG.match(self.tag)))
            and (not self.digest or bool(_DIGEST.match(self.digest)))
        )


def parse_image_ref(image: str) -> ImageRef:
    """Split an image reference. The first path component is a registry host only when it looks
    like one (has a '.' or ':' or is localhost), as Docker and containerd decide it."""
    name, _, digest = image.partition("@")
    first, sep, rest = name.partition("/")
    registry = first if sep and ("." in first or ":" in first or first == "localhost") else ""
    path = rest if registry else name
    repository, tag = path, ""
    if ":" in path.rsplit("/", 1)[-1]:
        repository, tag = path.rsplit(":", 1)
    return ImageRef(registry, repository, tag, digest)
