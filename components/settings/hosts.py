"""The hosts and how Pulumi reaches them: SSH, the control-plane host and the workers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .core import Reader, Secret
from .fields import REQUIRED, Int, IPv4, Items, SecretValue, Spec, Text, setting

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
HOST_KEY = r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}"


def free_addresses(r: Reader, path: str = "") -> list[str]:
    """Addresses inside network.hostCidr that no host uses yet, after the highest one in use
    (so a suggested address never lands outside the host network or on another host)."""
    import ipaddress

    try:
        net = ipaddress.IPv4Network(r.get("network.hostCidr"))
    except (ValueError, TypeError):
        return ["192.168.0.10"]
    used = set()
    for h in [r.get("controlPlane")] + (r.get("workers") if isinstance(r.get("workers"), list) else []):
        try:
            used.add(ipaddress.IPv4Address(h["address"]))
        except (ValueError, TypeError, KeyError, IndexError):
            pass
    inside = [a for a in used if a in net]
    start = int(max(inside)) + 1 if inside else int(net.network_address) + 10
    out: list[str] = []
    for n in range(start, int(net.broadcast_address)):
        if len(out) == 3:
            break
        if ipaddress.IPv4Address(n) not in used and ipaddress.IPv4Address(n) != net.network_address:
            out.append(str(ipaddress.IPv4Address(n)))
    return out


def _example_name(r: Reader, path: str) -> list[str]:
    m = re.search(r"workers\[(\d+)\]", path)
    return [f"worker-{int(m.group(1)) + 1}"] if m else ["master"]


@dataclass(frozen=True)
class Host:
    """A machine reached over SSH. Its host key is pinned, so a replaced machine is refused."""

    name: str = setting(
        Text(DNS_LABEL, "a host name (lower-case letters, digits, '-')"), doc="node name (lower-case letters, digits, '-')", example=_example_name
    )
    address: str = setting(IPv4(), doc="IPv4 address, inside network.hostCidr", example=free_addresses)
    host_key: str = setting(
        Text(HOST_KEY, "the host's public SSH key ('ssh-ed25519 AAAA...', from ssh-keyscan)", shape="SSH public key"),
        doc="the host's public SSH key (`ssh-keyscan -t ed25519 <address>`), pinned by every connection",
        example="ssh-ed25519 AAAA...",
    )


@dataclass(frozen=True)
class SshSettings:
    """How Pulumi reaches every host."""

    user: str = setting(Text(r"[a-z_][a-z0-9_-]*", "a user name"), "root", "login user on every host")
    port: int = setting(Int(1, 65535), 22, "SSH port of every host")
    private_key: Secret = setting(
        SecretValue("an SSH private key stored as a secret"),
        doc="SSH private key (PEM/OpenSSH) for every host: `pulumi config set --secret sshPrivateKey < key`",
        key="sshPrivateKey",
        root=True,
    )
    dial_error_limit: int = setting(Int(1, 1000), 10, "connection attempts before a host counts as unreachable (hosts still booting)")
    per_dial_timeout: int = setting(Int(1, 600), 15, "seconds per connection attempt")


WORKERS = Spec(Items(Host), REQUIRED, "one or more worker hosts (containerd, kubelet, kube-proxy, flanneld)", example=lambda r, p: [[example_worker(r)]])
CONTROL_PLANE_DOC = "the control-plane host (etcd, API server, scheduler, controller manager, registry)"


def example_worker(r: Reader) -> dict[str, Any]:
    return {"name": "worker-1", "address": first_or(free_addresses(r), "192.168.0.11"), "hostKey": "ssh-ed25519 AAAA..."}


def first_or(values: list[str], default: str) -> str:
    return values[0] if values else default


def parse_ssh(r: Reader) -> SshSettings:
    key = r.get("sshPrivateKey")
    private_key = key if isinstance(key, Secret) and "PRIVATE KEY" in key.reveal() else None
    if private_key is None:
        r.secret_problem("sshPrivateKey", "an SSH private key stored as a secret", key, "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519")
    return SshSettings(**r.section(SshSettings, "ssh"), private_key=private_key)  # type: ignore[arg-type]


def read_host(r: Reader, path: str) -> Host:
    """A host whose invalid fields are None (the cross-field checks skip those)."""
    return Host(**r.section(Host, path))


def complete(h: Host) -> bool:
    return bool(h.name and h.address and h.host_key)


def parse_hosts(r: Reader) -> tuple[Host | None, tuple[Host, ...], list[tuple[str, Host]]]:
    """(control plane, workers, [(key path, host)]): the last also holds partly valid hosts,
    each with the path it was written at (a problem blames the host the operator wrote)."""
    placed = [("controlPlane", read_host(r, "controlPlane"))]
    n = r.count("workers", WORKERS)
    if n == 0 and isinstance(r.get("workers"), list):
        r.problem("workers", "at least one worker host", [], [example_worker(r)])
    placed += [(f"workers[{i}]", read_host(r, f"workers[{i}]")) for i in range(n)]
    cp = placed[0][1]
    return (cp if complete(cp) else None), tuple(h for _, h in placed[1:] if complete(h)), placed
