"""The private image registry on the control-plane host (:5000 by default).

Storage is a directory on the host's disk (registry.storageDir), so images survive restarts of
the service and of the host; the original setup lost them with its container. TLS with a
certificate from the cluster CA, and htpasswd auth, per stack. The images the cluster needs
(the pod-sandbox "pause" image first) are loaded from OCI archives, so no node ever needs the
internet.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from . import remote as r
from .control_plane import ControlPlane, parse_b64_lines
from .settings import Settings
from .steps import Dependency

IMAGES_DIR = r.IMAGES_DIR


@dataclass(frozen=True)
class ImageRegistryArgs:
    settings: Settings
    """The validated stack settings."""
    control_plane: ControlPlane
    """The host the registry runs on (its PKI signs the registry certificate)."""


def registry_config(s: Settings) -> str:
    reg = s.registry
    tls_block = "  tls:\n    certificate: /etc/vm-platform/pki/registry.crt\n    key: /etc/vm-platform/pki/registry.key\n" if reg.tls else ""
    auth_block = "auth:\n  htpasswd:\n    realm: vm-platform-registry\n    path: /etc/vm-platform/registry/htpasswd\n" if reg.auth else ""
    return r.render("registry-config.yml", storage_dir=reg.storage_dir, port=reg.port, tls_block=tls_block, auth_block=auth_block)


class ImageRegistry(pulumi.ComponentResource):
    """A registry (distribution) as a systemd service with persistent storage, and its images.

    Outputs:
        endpoint: host:port that nodes and image references use.
        ca_certificate: PEM of the CA nodes trust for it (the cluster CA, which every node already
            has from its certificates; None for a plain-http registry).
        credentials: (user, password) Output when auth is on, else None.
        images: image name -> pushed digest.
        images_pushed: the push steps (workloads depend on them).
    """

    endpoint: str
    images: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:registry:ImageRegistry", name, None, opts)
        s, cp = args.settings, args.control_plane
        reg = s.registry
        steps = cp.steps.view(self, name)
        self.endpoint = s.registry_host
        ca = cp.ca_bundle.apply(lambda b: parse_b64_lines(b)["ca"])
        self.ca_certificate: pulumi.Output[str] | None = ca if reg.tls else None
        self.credentials: pulumi.Output[tuple[str, str]] | None = None

        prepared: list[Dependency] = [cp.prereqs, cp.pki]
        reads = [steps.file("config", "/etc/vm-platform/registry/config.yml", registry_config(s), after=prepared)]
        if reg.auth:
            assert reg.password is not None
            password = reg.password.output()
            htpasswd = steps.run(
                "htpasswd",
                "registry-htpasswd.sh",
                env={"USERNAME": reg.username, "DEST": "/etc/vm-platform/registry/htpasswd"},
                stdin=password,
                secret=True,
                delete=("remove-file.sh", {"DEST": "/etc/vm-platform/registry/htpasswd"}),
                after=prepared,
            )
            reads.append(htpasswd)
            self.credentials = pulumi.Output.secret(password.apply(lambda pw: (reg.username, pw)))
        unit_text = r.render("registry.service", binary=reg.binary, storage_dir=reg.storage_dir)
        unit = steps.unit("vm-platform-registry", unit_text, name="unit", after=[*reads, *prepared])
        scheme = "https" if reg.tls else "http"
        health = f"curl -s -o /dev/null --cacert /etc/vm-platform/pki/ca.crt {scheme}://127.0.0.1:{reg.port}/v2/"
        service = steps.restart("vm-platform-registry", reads=[*reads, unit, *([cp.pki_read("registry")] if reg.tls else [])], name="restart", health=health)
        self.service = service.command
        client_certs = steps.file("client-trust", "/etc/vm-platform/registry/client-certs/ca.crt", ca, after=[cp.pki])

        self.images = {}
        self.images_pushed: list[remote.Command] = []
        for img in reg.images:
            if not img.archive:
                continue  # pushed by other means (e.g. CI); nothing to load here
            archive = os.path.expandvars(os.path.expanduser(img.archive))
            safe = img.name.replace("/", "-").replace(":", "-")
            remote_archive = posixpath.join(IMAGES_DIR, f"{safe}.tar")
            copy = steps.copy(f"archive-{safe}", archive, remote_archive, digest=r.oci_archive_digest(archive), after=[cp.prereqs])
            env = {"SRC": remote_archive, "IMAGE": img.name, "REGISTRY": f"127.0.0.1:{reg.port}", "TLS": str(reg.tls).lower(), "AUTH": str(reg.auth).lower()}
            stdin = self.credentials.apply(lambda c: f"{c[0]}\n{c[1]}\n") if self.credentials is not None else None
            push = steps.run(f"push-{safe}", "push-image.sh", env=env, stdin=stdin, secret=reg.auth, reads=[copy], after=[service, client_certs])
            self.images[img.name] = push.stdout
            self.images_pushed.append(push.command)
        self.register_outputs({"endpoint": self.endpoint, "images": self.images})
