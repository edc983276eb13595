"""vm-platform-policies: assembles the rule modules into one policy pack (no logic here).

Run it with a stack's settings:
    pulumi preview -s dev --policy-pack policy --policy-pack-config policy/config/dev.json
"""

from pulumi_policy import PolicyPack
from rules import ALL_RULES
from rules.analyzer import share_decoded_properties

share_decoded_properties()  # one decoding of each resource for all rules (rules/analyzer.py)

PolicyPack(
    name="vm-platform-policies",
    policies=[rule.policy() for rule in ALL_RULES],
    description="Host bootstrap, workload, service and stack rules for the vm-platform project (Kubernetes on plain VMs over SSH).",
)
