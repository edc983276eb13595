"""The local stack on the shared backend (PostgreSQL, the pinned CLI's postgres:// DIY backend):
moved into a private PostgreSQL on loopback the way the README says, `up` against it changes
nothing; while one `up` (scaling the example service 2 -> 3) holds the stack's lock, a second
checkout's `up` (3 -> 4) is refused with the engine's message and changes nothing; the second
checkout's preview then diffs against the state the first wrote (3 -> 4). The stack goes back to
the file backend afterwards, as the rest of the suite expects it (2 replicas).

Runs before the other e2e modules (its name sorts first); the secrets scan stays last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.e2e.conftest import Lab
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tests.integration.postgres import LOCKED, Postgres, serve
from tools.automation import Project, copy_project

pytestmark = pytest.mark.lab

KEY = "services.example-service.replicas"
DEPLOYMENT = "service-example-service-deployment"


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    yield from serve("e2e")


def move(src: Project, dst: Project, stack: str = "local") -> None:
    """`stack export` from one backend, `stack import` into the other (the README's procedure)."""
    state = src.pulumi("stack", "export", "-s", stack).stdout
    if dst.pulumi("stack", "select", stack, check=False).returncode != 0:
        dst.pulumi("stack", "init", stack)
    subprocess.run(
        [str(dst.engine_dir / "pulumi"), "stack", "import", "-s", stack],
        input=state,
        cwd=dst.dir,
        env={**os.environ, **dst.env},
        capture_output=True,
        text=True,
        check=True,
    )


def replicas(lab: Lab, stack: auto.Stack) -> int:
    dep = json.loads(kubectl(kubeconfig_of(stack), "-n", lab.settings.eureka.namespace, "get", "deployment", "example-service", "-o", "json").stdout)
    return int(dep["spec"]["replicas"])


def test_local_stack_on_postgres_is_locked_and_shared(local: tuple[Project, auto.Stack], lab: Lab, pg: Postgres):
    project, file_stack = local
    file_stack.up(color="never", on_output=lambda line: None)
    salt = (project.dir / "Pulumi.local.yaml").read_text()
    a = Project(project.dir, project.engine_dir, {**project.env, "PULUMI_BACKEND_URL": pg.url})
    t0 = time.monotonic()
    move(project, a)
    assert (project.dir / "Pulumi.local.yaml").read_text() == salt, "stack init in the new backend changed the stack file's key material"
    stack_a = auto.select_stack("local", work_dir=str(a.dir), opts=a.workspace_opts())
    try:
        res = stack_a.up(color="never", on_output=lambda line: None)
        changes = {k: v for k, v in (res.summary.resource_changes or {}).items() if k not in ("same", "read")}  # read: the stack's own last outputs
        print(f"[e2e] local stack moved to PostgreSQL and `up` there: {time.monotonic() - t0:.1f} s, changes {changes}")
        assert changes == {}, changes

        tmp = Path(tempfile.mkdtemp(prefix="vmp-checkout-b-"))
        b = Project(copy_project(tmp, {}), project.engine_dir, a.env)
        shutil.copy2(project.dir / "Pulumi.local.yaml", b.dir / "Pulumi.local.yaml")
        stack_b = auto.select_stack("local", work_dir=str(b.dir), opts=b.workspace_opts())
        b.set_path(stack_b, KEY, 4)
        a.set_path(stack_a, KEY, 3)

        env_a = {**os.environ, **a.env}
        first = subprocess.Popen(
            [str(a.engine_dir / "pulumi"), "up", "--yes", "-s", "local"], cwd=a.dir, env=env_a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        t0 = time.monotonic()
        while "/locks/" not in pg.psql("SELECT string_agg(key, ' ') FROM pulumi_state;"):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - t0 < 60, "the first up never took the lock"
            time.sleep(0.1)
        t1 = time.monotonic()
        second = b.pulumi("up", "--yes", "-s", "local", check=False)
        refused_s = time.monotonic() - t1
        still_running = first.poll() is None
        out, err = first.communicate(timeout=1200)
        assert first.returncode == 0, out + err
        assert still_running, "the first up ended before the second was refused: nothing proven"
        assert second.returncode != 0 and LOCKED in second.stderr and "pulumi cancel" in second.stderr, second.stderr
        print(f"[e2e] second checkout's up refused in {refused_s:.1f} s while the first held the lock: {second.stderr.strip().splitlines()[0]}")
        assert replicas(lab, stack_a) == 3, "the refused up changed the cluster"

        preview = b.preview(stack_b)
        assert list(preview.changed()) == [DEPLOYMENT] and preview.changed()[DEPLOYMENT][0] == "update", preview.changed()
        assert preview.detailed(DEPLOYMENT) == ["spec.replicas"], preview.detailed(DEPLOYMENT)
        assert "3 => 4" in preview.stdout, preview.stdout[-3000:]
    finally:  # back to 2 replicas, and the stack back on the file backend for the rest of the suite
        a.set_path(stack_a, KEY, 2)
        stack_a.up(color="never", on_output=lambda line: None)
        move(a, project)
    assert replicas(lab, file_stack) == 2
    assert project.preview(file_stack).changed() == {}
