from tests.unit.harness import base_config, run_program


def test_dev_program_registers_cluster_registry_and_eureka():
    mocks = run_program(base_config())
    types = {r.type for r in mocks.resources.values()}
    assert "command:remote:Command" in types
    assert "kubernetes:apps/v1:Deployment" in types
