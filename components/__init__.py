"""Components of the vm-platform Pulumi program (one component per module)."""
