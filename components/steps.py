"""Host steps that know what they restart.

Components declare the steps of one host through a `HostSteps` object, which returns each step
as a `Step` carrying the command and the digest of what it put on the host. A restart names the
steps whose files its service reads, and both its triggers and its dependencies come from that
one list. Scripts reach the host through one bundle resource (`HostScripts`) holding exactly the
scripts the declared steps run and the libraries those source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pulumi
from pulumi_command import remote

from . import remote as r
from .remote import Target

C = TypeVar("C", remote.Command, remote.CopyToRemote)


@dataclass(frozen=True)
class Step(Generic[C]):
    """One host step and the digest of what it leaves on the host.

    The digest identifies the step's effect for whatever reads it: the sha256 of a file's
    content, a binary's version stamp, the hash of a certificate bundle; a restart's digest is
    its id (it changes with every restart). None: nothing can be keyed on this step.
    """

    command: C
    digest: pulumi.Input[str] | None = None

    @property
    def stdout(self: Step[remote.Command]) -> pulumi.Output[str]:
        return self.command.stdout


CommandStep = Step[remote.Command]
CopyStep = Step[remote.CopyToRemote]
Dependency = Step[Any] | pulumi.Resource


class HostScripts(pulumi.ComponentResource):
    """The host scripts installed on one host (one bundle; re-installed when any of them changes).

    Outputs:
        installed: the bundle command, for steps to depend on.
    """

    installed: remote.Command

    def __init__(self, name: str, args: tuple[Target, pulumi.Input[str]], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:host:HostScripts", name, None, opts)
        target, bundle = args
        self.installed = remote.Command(
            f"{name}-bundle",
            connection=target.connection,
            create="bash -s",
            stdin=bundle,
            # Last to go (every step depends on it): the claim, the scripts, the staged copies
            # (CopyToRemote removes nothing) and the directories the steps' deletes emptied.
            delete=f"{target.owner.release_command()}; rm -rf {r.REMOTE_LIB} {r.STAGING_DIRS}; {r.REMOVE_EMPTY_DIRS}",
            add_previous_output_in_env=False,
            logging=remote.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"installed": self.installed.id})


class _HostBundle:
    """What every HostSteps view of one host shares: the scripts its steps run, and whether the
    set is final."""

    def __init__(self, host: str, owner: r.Owner) -> None:
        self.host = host
        self.owner = owner
        self.scripts: set[str] = set()
        self.declared_by: set[str] = set()
        self.done = False

    def add(self, prefix: str, *scripts: str) -> None:
        if self.done:
            raise RuntimeError(
                f"host {self.host}: step scripts {', '.join(scripts)} declared by {prefix} after steps.done(); "
                "declare every step on a host before finishing its steps (Cluster finishes the control plane's after its workers)"
            )
        self.declared_by.add(prefix)
        self.scripts.update(scripts)

    async def text(self) -> str:
        # Normally this first runs after the program's synchronous body, when done() has long
        # been called. It can run earlier when something pumps the event loop from inside the
        # program (a synchronous invoke); then the body is still executing (another task's
        # coroutine is mid-step), so wait for it. Once no other task is running, the body has
        # returned: if done() was never called it never will be, so fail instead of hanging.
        while not self.done:
            if not _synchronous_code_running():
                raise pulumi.RunError(
                    f"host {self.host}: its steps were never finished, so its script bundle is unknown; "
                    f"call steps.done() once every step on it is declared (steps declared by: {', '.join(sorted(self.declared_by))})"
                )
            await asyncio.sleep(0.01)
        return r.script_bundle(r.with_libraries(self.scripts), self.owner)


def _synchronous_code_running() -> bool:
    """True while another asyncio task is mid-step, i.e. the event loop is being pumped from
    inside synchronous code (the Pulumi program's body) rather than from the top level."""
    me = asyncio.current_task()
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if task is not me and (getattr(coro, "cr_running", False) or getattr(coro, "gi_running", False)):
            return True
    return False


class HostSteps:
    """Declares the host steps of one component on one host.

    Every step depends on the host's script bundle (the base dependency). Methods return a
    `Step`; `reads=[step, ...]` (on `restart` and `run`) is the one place that says what a step
    consumes: the readers' triggers are those steps' digests and their dependencies those steps,
    so a new config file for a service is one more entry in its restart's `reads`.

    The bundle is derived from the steps declared on the host, including those other components
    declare through `view()` (the registry, a worker's certificate signing and readiness check
    on the control plane). Its content is an Output resolved by `done()`: the bundle resource
    exists from the start, so steps can depend on it, and its text is computed once the last
    step is known. A step declared after `done()` raises at once; a host whose steps are never
    finished fails the program with an error naming the host (it cannot hang the engine: see
    `_HostBundle.text`). Declaring the script set up front from step kinds was the alternative;
    it would be one more list to keep in step with the code, which is what this replaces.
    """

    def __init__(self, target: Target, parent: pulumi.Resource, prefix: str, *, _bundle: tuple[_HostBundle, HostScripts] | None = None) -> None:
        self.target = target
        self.parent = parent
        self.prefix = prefix
        if _bundle is None:
            shared = _HostBundle(target.host.name, target.owner)
            scripts = HostScripts(f"{prefix}-scripts", (target, pulumi.Output.from_input(shared.text())), pulumi.ResourceOptions(parent=parent))
            _bundle = (shared, scripts)
        self._shared, self.scripts = _bundle

    def view(self, parent: pulumi.Resource, prefix: str) -> HostSteps:
        """Steps on the same host (and into the same script bundle) for another component."""
        return HostSteps(self.target, parent, prefix, _bundle=(self._shared, self.scripts))

    def done(self) -> None:
        """Every step on this host is declared: the script bundle's content is now fixed (a step
        declared later raises). Whoever declares the host's last step calls it."""
        self._shared.done = True

    def _depends_on(self, groups: Iterable[Sequence[Dependency]]) -> list[pulumi.Resource]:
        deps: list[pulumi.Resource] = [self.scripts.installed]
        for d in (d for g in groups for d in g):
            resource = d.command if isinstance(d, Step) else d
            if resource not in deps:
                deps.append(resource)
        return deps

    def run(
        self,
        name: str,
        script: str,
        *,
        env: Mapping[str, object] | None = None,
        stdin: pulumi.Input[str] | None = None,
        secret: bool = False,
        reads: Sequence[Step[Any]] = (),
        after: Sequence[Dependency] = (),
        delete: tuple[str, Mapping[str, object]] | None = None,
        digest: pulumi.Input[str] | None = None,
        delete_before_replace: bool = False,
    ) -> CommandStep:
        """Run `script` on the host as the step `<prefix>-<name>`.

        reads: steps whose effect this step consumes; their digests are its triggers (a change
            re-creates it) and they are its dependencies; for a step with a delete, they are part
            of its command line instead (a change updates it: no replacement whose old delete
            would undo the new step). after: dependencies only.
        secret: stdin carries a secret or stdout is one, so output logging is off and stdout and
            stderr are stored as secrets. Other steps log only stderr, where the scripts write
            their human lines; stdout is machine data (CA bundles, stamps) the program reads.
        env: values may be Outputs (known in preview, e.g. from the last deployment); a value
            that is or resolves to None is left out of the command line.
        delete: (script, env) that undoes the step on `pulumi destroy`.
        digest: defaults to the sha256 of stdin, when there is one.
        """
        self._shared.add(self.prefix, script, *([delete[0]] if delete else []))
        triggers: list[pulumi.Input[str]] = []
        for read in reads:
            if read.digest is None:
                raise TypeError(f"{self.prefix}-{name} reads {read.command._name}, which has no digest to key on")
            triggers.append(read.digest)
        keys = list(env or {})
        values = [(env or {})[k] for k in keys]
        if delete and triggers:
            # A step that undoes itself on delete must not be replaced: the replacement's
            # create runs first and the old step's delete then undoes it (and against a rebuilt
            # host, whose key changed, the old delete cannot even connect). What it reads goes
            # into its command line instead: a change is an update, which runs create again.
            keys.append("VMP_READS")
            values.append(pulumi.Output.all(*triggers).apply(lambda digests: r.sha256("|".join(digests))[:16]))
            triggers = []

        def line(resolved: Sequence[object]) -> str:
            return r.command_line(script, {k: v for k, v in zip(keys, resolved, strict=True) if v is not None})

        create: pulumi.Input[str]
        if any(isinstance(v, pulumi.Output) for v in values):
            create = pulumi.Output.all(*values).apply(line)
        else:
            create = line(values)
        command = remote.Command(
            f"{self.prefix}-{name}",
            connection=self.target.connection,
            create=create,
            delete=r.command_line(*delete) if delete else None,
            stdin=stdin,
            triggers=triggers or None,
            add_previous_output_in_env=False,
            logging=remote.Logging.NONE if secret else remote.Logging.STDERR,
            opts=pulumi.ResourceOptions(
                parent=self.parent,
                depends_on=self._depends_on([reads, after]),
                additional_secret_outputs=["stdout", "stderr"] if secret else None,
                delete_before_replace=delete_before_replace,
            ),
        )
        if digest is None and stdin is not None:
            digest = r.content_digest(stdin)
        return Step(command, digest)

    def file(
        self, name: str, dest: str, content: pulumi.Input[str], *, mode: str = "0644", secret: bool = False, after: Sequence[Dependency] = ()
    ) -> CommandStep:
        """A file on the host, written from stdin (digest: sha256 of the content); removed on destroy."""
        return self.run(
            name,
            "install-file.sh",
            env={"DEST": dest, "MODE": mode},
            stdin=content,
            secret=secret,
            delete=("remove-file.sh", {"DEST": dest}),
            after=after,
        )

    def unit(self, unit: str, content: str, *, name: str = "", data_dir: str = "", after: Sequence[Dependency] = ()) -> CommandStep:
        """A systemd unit file (step `<unit>-unit` unless named); destroy stops and disables the
        unit and removes the file (and data_dir)."""
        stop_env = {"UNIT": unit, **({"DATA_DIR": data_dir} if data_dir else {})}
        return self.run(
            name or f"{unit}-unit",
            "install-file.sh",
            env={"DEST": f"/etc/systemd/system/{unit}.service", "MODE": "0644"},
            stdin=content,
            delete=("stop-service.sh", stop_env),
            after=after,
        )

    def restart(
        self,
        unit: str,
        reads: Sequence[Step[Any]],
        *,
        name: str = "",
        health: str = "true",
        timeout: int = 120,
        after: Sequence[Dependency] = (),
    ) -> CommandStep:
        """Restart `unit` (step `<unit>-restart` unless named) whenever a step it reads changes.

        `reads` are exactly the steps whose files the unit reads (its unit file, config files,
        binary, certificates). HEALTH runs where lib.sh is sourced, so it can use the vmp_*
        checks. Stopping the unit belongs to the unit-file step's delete, not to this one:
        replacement creates the new restart before deleting the old, and a stop here would stop
        the freshly restarted service. The returned step's digest is its id, for steps that must
        re-run after each restart.
        """
        if not reads:
            raise ValueError(f"{self.prefix}: a restart of {unit} that reads nothing would never restart it")
        step = self.run(name or f"{unit}-restart", "restart-service.sh", env={"UNIT": unit, "HEALTH": health, "TIMEOUT": timeout}, reads=reads, after=after)
        return Step(step.command, step.command.id)

    def copy(
        self,
        name: str,
        source: str,
        remote_path: str,
        *,
        digest: str,
        triggers: Sequence[str] = (),
        after: Sequence[Dependency] = (),
    ) -> CopyStep:
        """Copy a local file to the host (CopyToRemote; nothing is removed on destroy).

        digest: what identifies the file for the steps that read it (its sha256, an OCI
        manifest digest). The host's key is a trigger too: a host rebuilt from scratch (empty
        disk, new SSH host key) gets its files copied again, and the preview shows that as a
        replacement for that reason; a changed connection alone is an in-place update that a
        provider may apply without copying."""
        command = remote.CopyToRemote(
            f"{self.prefix}-{name}",
            connection=self.target.connection,
            source=pulumi.FileAsset(source),
            remote_path=remote_path,
            triggers=[*triggers, self.target.host.host_key],
            opts=pulumi.ResourceOptions(parent=self.parent, depends_on=self._depends_on([after])),
        )
        return Step(command, digest)
