"""What the stack's last finished deployment exported, for checks the preview can make: a
Kubernetes version change (components/upgrade.py) and certificates near their expiry (pki_warning).

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


def expiring(expiry: object, days: int, now: datetime) -> list[tuple[str, str, str, float]]:
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


def pki_warning(settings: Settings, previous: pulumi.StackReference, parent: pulumi.Resource, now: datetime | None = None) -> pulumi.Output[str]:
    """Warns (preview and up) about certificates within pki.warnDays of expiry; returns the message ("" when none)."""
    days = settings.pki.warn_days

    def warn(expiry: object) -> str:
        soon = expiring(expiry, days, now or datetime.now(UTC)) if days else []
        if not soon:
            return ""
        listed = "; ".join(f"{host} {name} {end} ({left:.0f} days)" if left >= 0 else f"{host} {name} {end} (EXPIRED)" for host, name, end, left in soon)
        msg = f"{len(soon)} certificate(s) expire within {days} days (pki.warnDays): {listed}. Renewal is not automatic yet: README, Certificate lifetime"
        pulumi.log.warn(msg, parent)
        return msg

    return previous.get_output(EXPIRY_OUTPUT).apply(warn)
