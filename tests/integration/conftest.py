import pytest

from tools.automation import Project, new_project, repo_stack_config


@pytest.fixture(scope="session")
def project() -> Project:
    """One copy of the project with dev and prod stacks on a throwaway backend."""
    return new_project({s: repo_stack_config(s) for s in ("dev", "prod")})
