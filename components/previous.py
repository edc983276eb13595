"""What the stack's last finished deployment exported, for checks the preview can make: a
Kubernetes version change (components/upgrade.py) and certificates near their expiry
(Renewals: leaf certificates within pki.renewDays are renewed, CAs warned about).

One `pulumi:pulumi:StackReference` to the stack itself per program run (it reads the state's
stack outputs; a stack never deployed, or deployed before an output existed, gives None).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pulumi

from .settings import Settings

EXPIRY_OUTPUT = "certificateExpiry"
CA_CERTIFICATES = ("ca", "etcd-ca")


def last_deployment(settings: Settings, parent: pulumi.Resource) -> pulumi.StackReference:
    """The reference to this stack's own last deployment (create it once per program: Cluster)."""
    me = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    return pulumi.StackReference(f"{settings.stack}-previous", stack_name=me, opts=pulumi.ResourceOptions(parent=parent))


def expiring(expiry: object, days: float, now: datetime) -> list[tuple[str, str, str, float]]:
    """(host, certificate, notAfter, days left) of every certificate expiring within `days`,
    soonest first, from a certificateExpiry output (host -> name -> ISO 8601 UTC)."""
    out: list[tuple[str, str, str, float]] = []
    if not isinstance(expiry, dict):
        return out
    for host, certs in expiry.items():
        for name, not_after in (certs or {}).items() if isinstance(certs, dict) else ():
            try:
                end = datetime.strptime(str(not_after), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                continue
            left = (end - now).total_seconds() / 86400
            if left < days:
                out.append((str(host), str(name), str(not_after), left))
    return sorted(out, key=lambda e: e[3])


RENEWALS_OUTPUT = "certificateRenewals"


def renewal_mark(last_mark: object, certs: object, days: float, now: datetime) -> str | None:
    """A host's renewal mark: the RENEW value its signing step gets (pki-init.sh, sign-node.sh).

    When a leaf certificate of the host expires within `days` (by the last deployment's
    certificateExpiry), a new mark `name,name@notAfter` (those certificates, the soonest
    notAfter): the mark changes, so the step runs again and reissues them. Otherwise the last
    deployment's mark, unchanged (a renewal happens once, and the next preview is empty); None
    for a host never renewed."""
    soon = [(name, end) for _, name, end, _ in expiring({"host": certs}, days, now) if name not in CA_CERTIFICATES] if days else []
    if soon:
        return ",".join(sorted(name for name, _ in soon)) + "@" + min(end for _, end in soon)
    return str(last_mark) if isinstance(last_mark, str) and last_mark else None


class Renewals:
    """Certificate renewal, decided from the stack's last deployment (known in preview, so the
    preview shows the reissue and the restarts it causes): `mark(host)` is the RENEW value of
    the host's signing step. Logs one warning naming what this run renews, and one for CAs within
    pki.renewDays (CA rotation is manual: README, Certificate lifetime)."""

    def __init__(self, settings: Settings, previous: pulumi.StackReference, parent: pulumi.Resource, now: datetime | None = None) -> None:
        self.days = settings.pki.renewal_window_days
        self.now = now or datetime.now(UTC)
        self.expiry = previous.get_output(EXPIRY_OUTPUT)
        self.last = previous.get_output(RENEWALS_OUTPUT)
        self.marks: dict[str, pulumi.Output[str | None]] = {}
        self.message = self.expiry.apply(lambda expiry: self._warn(expiry, parent))

    def _warn(self, expiry: object, parent: pulumi.Resource) -> str:
        soon = expiring(expiry, self.days, self.now) if self.days else []
        if not soon:
            return ""

        def listed(entries: list[tuple[str, str, str, float]]) -> str:
            return "; ".join(f"{host} {name} {end} ({left:.1f} days)" if left >= 0 else f"{host} {name} {end} (EXPIRED)" for host, name, end, left in entries)

        leaves = [e for e in soon if e[1] not in CA_CERTIFICATES]
        cas = [e for e in soon if e[1] in CA_CERTIFICATES]
        lines = []
        if leaves:
            lines.append(
                f"renewing {len(leaves)} certificate(s) that expire within {self.days:g} days (pki.renewDays), restarting what reads them: {listed(leaves)}"
            )
        if cas:
            lines.append(
                f"{len(cas)} CA certificate(s) expire within {self.days:g} days (pki.renewDays); CA rotation is manual: README, Certificate lifetime: {listed(cas)}"
            )
        msg = "\n".join(lines)
        pulumi.log.warn(msg, parent)
        return msg

    def mark(self, host: str) -> pulumi.Output[str | None]:
        """The RENEW value for `host`'s signing step (None: no renewal ever)."""
        if host not in self.marks:
            self.marks[host] = pulumi.Output.all(self.last, self.expiry).apply(
                lambda pair: renewal_mark(
                    (pair[0] or {}).get(host) if isinstance(pair[0], dict) else None,
                    (pair[1] or {}).get(host) if isinstance(pair[1], dict) else None,
                    self.days,
                    self.now,
                )
            )
        return self.marks[host]

    def output(self) -> pulumi.Output[dict[str, str]]:
        """host -> mark of every host that has one: the stack output the next run reads."""
        hosts = list(self.marks)
        return pulumi.Output.all(*(self.marks[h] for h in hosts)).apply(lambda marks: {h: m for h, m in zip(hosts, marks, strict=True) if m})
