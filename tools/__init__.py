"""Project tooling: engine setup, lab hosts, binary builds and benchmarks (no Pulumi resources)."""
