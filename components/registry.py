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

IMAGES_DIR = "/var/lib/vm-platform/images"


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
        t = cp.target
        p = name
        self.endpoint = s.registry_host
        self.ca_certificate: pulumi.Output[str] | None = cp.ca_bundle.apply(lambda b: parse_b64_lines(b)["ca"]) if reg.tls else None
        self.credentials: pulumi.Output[tuple[str, str]] | None = None

        deps: list[pulumi.Resource] = [cp.prereqs, cp.pki]
        conf_text = registry_config(s)
        conf = r.install_file(f"{p}-config", t, "/etc/vm-platform/registry/config.yml", conf_text, parent=self, depends_on=deps)
        reads: list[pulumi.Input[str]] = [r.sha256(conf_text)]
        if reg.auth:
            assert reg.password is not None
            password = reg.password.output()
            htpasswd = r.step(
                f"{p}-htpasswd", t, "registry-htpasswd.sh", parent=self,
                env={"USERNAME": reg.username, "DEST": "/etc/vm-platform/registry/htpasswd"}, stdin=password, secret=True,
                delete=("remove-file.sh", {"DEST": "/etc/vm-platform/registry/htpasswd"}), depends_on=deps,
            )  # fmt: skip
            deps.append(htpasswd)
            reads.append(password.apply(r.sha256))
            self.credentials = pulumi.Output.secret(password.apply(lambda pw: (reg.username, pw)))
        unit_text = r.render("registry.service", binary=reg.binary, storage_dir=reg.storage_dir)
        unit = r.unit_file(f"{p}-unit", t, "vm-platform-registry", unit_text, parent=self, depends_on=[conf, *deps])
        scheme = "https" if reg.tls else "http"
        self.service = r.restart(
            f"{p}-restart", t, "vm-platform-registry", [*reads, r.sha256(unit_text)], parent=self,
            health=f"curl -s -o /dev/null --cacert /etc/vm-platform/pki/ca.crt {scheme}://127.0.0.1:{reg.port}/v2/", depends_on=[unit],
        )  # fmt: skip
        client_certs = r.step(
            f"{p}-client-trust", t, "install-file.sh", parent=self,
            env={"DEST": "/etc/vm-platform/registry/client-certs/ca.crt", "MODE": "0644"},
            stdin=cp.ca_bundle.apply(lambda b: parse_b64_lines(b)["ca"]),
            delete=("remove-file.sh", {"DEST": "/etc/vm-platform/registry/client-certs/ca.crt"}), depends_on=[cp.pki],
        )  # fmt: skip

        self.images = {}
        self.images_pushed: list[remote.Command] = []
        for img in reg.images:
            if not img.archive:
                continue  # pushed by other means (e.g. CI); nothing to load here
            archive = os.path.expandvars(os.path.expanduser(img.archive))
            safe = img.name.replace("/", "-").replace(":", "-")
            remote_archive = posixpath.join(IMAGES_DIR, f"{safe}.tar")
            copy = remote.CopyToRemote(
                f"{p}-archive-{safe}", connection=t.connection, source=pulumi.FileAsset(archive), remote_path=remote_archive,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[cp.prereqs]),
            )  # fmt: skip
            env = {"SRC": remote_archive, "IMAGE": img.name, "REGISTRY": f"127.0.0.1:{reg.port}", "TLS": str(reg.tls).lower(), "AUTH": str(reg.auth).lower()}
            stdin = self.credentials.apply(lambda c: f"{c[0]}\n{c[1]}\n") if self.credentials is not None else None
            push = r.step(
                f"{p}-push-{safe}", t, "push-image.sh", parent=self, env=env, stdin=stdin, secret=reg.auth,
                triggers=[r.oci_archive_digest(archive)], depends_on=[copy, self.service, client_certs],
            )  # fmt: skip
            self.images[img.name] = push.stdout
            self.images_pushed.append(push)
        self.register_outputs({"endpoint": self.endpoint, "images": self.images})
