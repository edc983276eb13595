"""The pack's rules by layer. ALL_RULES is what __main__.py registers, in this order."""

from . import hosts, rbac, services, stack, workloads
from .common import Rule

ALL_RULES: list[Rule] = [*hosts.RULES, *workloads.RULES, *services.RULES, *stack.RULES, *rbac.RULES]

__all__ = ["ALL_RULES", "Rule"]
