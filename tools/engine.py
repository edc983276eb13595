"""Makes the real Pulumi engine available: the `pulumi` CLI, the Python language host (with its
exec script) and the `command` and `kubernetes` provider plugins, at the versions pinned in
toolchain.toml, plus the project's and the policy pack's virtualenvs.

Order for the engine: a `pulumi` on PATH at the pinned version; else a cached build; else the
official installer when reachable (the normal path with internet); else a build from Go modules
through the module proxy, cached outside the repo and keyed by version. Each provider plugin:
its official release when it can be had, else built here (ensure_plugins). Idempotent; the
second run takes seconds.

    python -m tools.engine            # set everything up, print the engine directory
    python -m tools.engine --env      # print the environment (export lines) the tools use

Local engine settings (see env()): a file backend under the cache, passphrase secrets, update
checks and automatic plugin downloads off (a missing plugin fails loudly instead of hanging).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from .common import ROOT, ToolError, cache_dir, go_build, pins, progress, run, write_if_changed

OFFICIAL_INSTALLER = "https://get.pulumi.com"


def engine_dir() -> Path:
    """<root>/bin of the pinned engine (the layout the official installer and PulumiCommand use)."""
    return cache_dir() / "engine" / f"pulumi-v{pins()['pulumi']['cli']}" / "bin"


def pulumi_home() -> Path:
    return cache_dir() / "pulumi-home"


def backend_dir() -> Path:
    d = cache_dir() / "state"
    d.mkdir(parents=True, exist_ok=True)
    return d


FILE_BACKEND = "file://"
# A file backend's blob store (gocloud fileblob) rewrites each object's ".attrs" sidecar in
# place (truncate, then write): a read racing a write decodes an empty sidecar and fails with
# "failed to load checkpoint: EOF". The program reads its own stack (components/previous.py)
# while the engine writes that stack's checkpoint, so it hit this in CI. Without sidecars
# (metadata=skip) every object is replaced by one rename, and a read sees the old or the new.
FILE_BACKEND_QUERY = "metadata=skip"


def file_backend(path: Path | str) -> str:
    """The backend URL of a state directory."""
    return f"{FILE_BACKEND}{path}?{FILE_BACKEND_QUERY}"


def backend_url(url: str) -> str:
    """A backend URL as the tools pass it to the engine: a file backend without a `metadata`
    setting gets metadata=skip (see FILE_BACKEND_QUERY); any other URL is unchanged."""
    if not url.startswith(FILE_BACKEND) or "metadata=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}{FILE_BACKEND_QUERY}"


def backend_path(url: str) -> Path:
    """The state directory of a file backend URL."""
    if not url.startswith(FILE_BACKEND):
        raise ToolError(f"PULUMI_BACKEND_URL {url.split('://')[0]}://... is not a file backend")
    return Path(url.removeprefix(FILE_BACKEND).split("?", 1)[0])


def engine_tmp() -> Path:
    """The engine's temporary files, private to the user (0700), never the shared /tmp: the
    kubernetes provider writes the kubeconfig it is configured with (a client key) to
    $TMPDIR/kubeconfig<digits> each time it starts, and never removes it. Each process that
    runs the engine gets a directory of its own in here (run_tmp; tools/pulumi makes its own),
    removed when it exits; one left by a killed process is removed by the next."""
    d = cache_dir() / "tmp"
    d.mkdir(mode=0o700, exist_ok=True)
    d.chmod(0o700)
    return d


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_run_tmp: Path | None = None


def run_tmp() -> Path:
    """This process's temporary directory for the engine (TMPDIR of every pulumi it runs),
    removed at exit; directories of processes no longer alive are removed first."""
    global _run_tmp
    if _run_tmp is None or not _run_tmp.is_dir():
        base = engine_tmp()
        for old in base.glob("run-*-*"):
            pid = old.name.split("-")[1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        _run_tmp = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=base))
        atexit.register(shutil.rmtree, _run_tmp, True)
    return _run_tmp


def env(engine: Path | None = None, tmp: Path | None = None) -> dict[str, str]:
    """Environment for every pulumi invocation of this project (CLI, Automation API, tests)."""
    bin_dir = engine or engine_dir()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(tmp or run_tmp()),
        "PULUMI_HOME": str(pulumi_home()),
        "PULUMI_BACKEND_URL": backend_url(os.environ.get("PULUMI_BACKEND_URL", "")) or file_backend(backend_dir()),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }


# --------------------------------------------------------------------------------------------
# Python environments


def project_requirements() -> list[str]:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    return [*data["project"]["dependencies"], *data["project"]["optional-dependencies"]["dev"]]


def ensure_venv(venv: Path, requirements: list[str], label: str) -> None:
    stamp = venv / ".vmp-requirements"
    want = "\n".join(sorted(requirements))
    if stamp.exists() and stamp.read_text() == want and (venv / "bin" / "python").exists():
        progress(f"{label} virtualenv: up to date")
        return
    progress(f"{label} virtualenv: installing {len(requirements)} pinned packages into {venv}")
    if not (venv / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements])
    stamp.write_text(want)


def ensure_python() -> None:
    ensure_venv(ROOT / "venv", project_requirements(), "project")
    policy_reqs = [line.strip() for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    ensure_venv(ROOT / "policy" / "venv", policy_reqs, "policy pack")


# --------------------------------------------------------------------------------------------
# The engine


def _cli_version(pulumi: str) -> str | None:
    try:
        out = subprocess.run([pulumi, "version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.lstrip("v") or None


def _complete(d: Path) -> bool:
    return all((d / n).exists() for n in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec"))


def _reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 (fixed https URL)
        return True
    except OSError:
        return False


def _official_install(version: str, dest: Path) -> bool:
    if not _reachable(OFFICIAL_INSTALLER):
        progress("official installer: unreachable, building from Go modules instead")
        return False
    progress(f"official installer: installing pulumi v{version}")
    script = urllib.request.urlopen(OFFICIAL_INSTALLER, timeout=30).read()  # noqa: S310
    subprocess.run(["sh", "-s", "--", "--version", version, "--install-root", str(dest.parent), "--no-edit-path"], input=script, check=True)
    (dest / ".official").write_text("installed by the official installer\n")
    return _complete(dest)


def _sdk_module_dir(version: str) -> Path:
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/pulumi/pulumi/sdk/v3@v{version}"],
        capture_output=True,
        text=True,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if out.returncode != 0:
        raise ToolError(f"go mod download of pulumi sdk v{version} failed: {out.stderr.strip() or out.stdout.strip()}")
    return Path(json.loads(out.stdout)["Dir"])


def _build_engine(version: str, dest: Path) -> None:
    work = cache_dir() / "build" / f"pulumi-cli-v{version}"
    log = work / "build.log"
    if not (work / "bin" / "pulumi").exists():
        # pkg/v3 has replace lines (sdk => ../sdk, a clipboard fork), so `go install pkg@v` refuses:
        # build it from a wrapper module that repeats them.
        write_if_changed(
            work / "go.mod",
            f"module vmplatform.local/build/pulumi\n\ngo 1.26.6\n\nrequire (\n\tgithub.com/pulumi/pulumi/pkg/v3 v{version}\n\tgithub.com/pulumi/pulumi/sdk/v3 v{version}\n)\n\n"
            "replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n",
        )
        progress(f"engine: building pulumi v{version} from Go modules (about 6 minutes on 2 cores)")
        go_build(work, "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", work / "bin" / "pulumi", tags="osusergo,grpcnotrace",
                 ldflags=f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{version}", log=log)  # fmt: skip
    source = pins()["language_host"]["source"]
    lh = ROOT / source
    progress(f"engine: building the Python language host ({source})")
    go_build(lh, ".", work / "bin" / "pulumi-language-python", log=log)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("pulumi", "pulumi-language-python"):
        # temp file + rename: a running old binary stays intact ("text file busy" otherwise)
        shutil.copy2(work / "bin" / name, dest / f".{name}.tmp")
        (dest / f".{name}.tmp").replace(dest / name)
    (dest / ".langhost-source").write_text(source_hash(lh))
    exec_script = _sdk_module_dir(version) / "python" / "cmd" / "pulumi-language-python-exec"
    tmp = dest / ".pulumi-language-python-exec.tmp"
    shutil.copyfile(exec_script, tmp)  # module files are read-only, without the exec bit
    tmp.chmod(0o755)
    tmp.replace(dest / "pulumi-language-python-exec")


def ensure_engine() -> Path:
    version = pins()["pulumi"]["cli"]
    on_path = shutil.which("pulumi")
    if on_path and _cli_version(on_path) == version and _complete(Path(on_path).resolve().parent):
        progress(f"engine: pulumi v{version} on PATH ({on_path})")
        return Path(on_path).resolve().parent
    dest = engine_dir()
    if _complete(dest) and _cli_version(str(dest / "pulumi")) == version:
        stamp = dest / ".langhost-source"
        want = source_hash(ROOT / pins()["language_host"]["source"])
        if (dest / ".official").exists() or (stamp.exists() and stamp.read_text() == want):
            progress(f"engine: pulumi v{version} cached in {dest}")
            return dest
        progress("engine: the language host's source changed; rebuilding it")
    if _official_install(version, dest):
        return dest
    _build_engine(version, dest)
    if not _complete(dest):
        raise ToolError(f"no way to get pulumi v{version}: not on PATH, the official installer is unreachable, and the Go build left {dest} incomplete")
    return dest


# --------------------------------------------------------------------------------------------
# Provider plugins


def _installed_plugins(engine: Path) -> set[tuple[str, str]]:
    out = subprocess.run(["pulumi", "plugin", "ls", "--json"], capture_output=True, text=True, env={**os.environ, **env(engine)})
    if out.returncode != 0:
        return set()
    return {(p["name"], p["version"]) for p in json.loads(out.stdout or "[]") if p.get("kind") == "resource"}


def _build_kubernetes_provider(spec: dict) -> Path:
    version = spec["version"]
    work = cache_dir() / "build" / f"pulumi-kubernetes-{version}"
    binary = work / "bin" / "pulumi-resource-kubernetes"
    if binary.exists():
        return binary
    src = work / "src"
    mod_dir = json.loads(
        subprocess.run(["go", "mod", "download", "-json", f"{spec['module']}@{spec['module_version']}"], capture_output=True, text=True, check=True).stdout
    )["Dir"]
    # The main package embeds two generated JSON files that are gitignored upstream, so they are
    # missing from the module zip: copy the package out and run its generate.go to make them.
    src.mkdir(parents=True, exist_ok=True)
    for name in ("main.go", "generate.go", "schema.json", "terraform-mapping.json"):
        shutil.copyfile(Path(mod_dir) / spec["package"] / name, src / name)
    write_if_changed(
        src / "go.mod", f"module vmplatform.local/build/pulumi-resource-kubernetes\n\ngo 1.24.7\n\nrequire {spec['module']} {spec['module_version']}\n"
    )
    progress(f"plugins: generating kubernetes {version} schema")
    run(["go", "run", "generate.go"], cwd=src, env={"GOFLAGS": "-mod=mod", "VERSION": version}, log=work / "build.log")
    progress(f"plugins: building kubernetes {version} (about 8 minutes on 2 cores)")
    go_build(src, ".", binary, ldflags=f"-X {spec['version_var']}={version}", log=work / "build.log")
    return binary


def source_hash(d: Path) -> str:
    """Identity of a project-written Go plugin's source: rebuild when it changes."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(d.rglob("*")):
        if f.is_file() and (f.suffix == ".go" or f.name in ("go.mod", "go.sum")):
            h.update(f.relative_to(d).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _build_command_provider(spec: dict) -> Path:
    version = spec["version"]
    work = cache_dir() / "build" / f"pulumi-command-{version}"
    binary = work / "bin" / "pulumi-resource-command"
    progress(f"plugins: building command {version} ({spec['source']})")
    go_build(ROOT / spec["source"], ".", binary, ldflags=f"-X main.version={version}", log=work / "build.log")
    return binary


OFFICIAL = "official"  # the stamp of a plugin installed from its official release
# VMP_PLUGINS: "official" tries the official releases again (e.g. once a machine has internet);
# "build" never tries them. Unset: tried once, when a plugin is not installed yet.
PLUGIN_CHOICE = "VMP_PLUGINS"


def _official_plugin(name: str, version: str, engine: Path) -> bool:
    """`pulumi plugin install resource NAME VERSION` from the plugin's official release (the
    CLI's own download location; needs internet). False when it cannot be had."""
    if not _reachable(OFFICIAL_INSTALLER):
        return False
    p = subprocess.run(
        ["pulumi", "plugin", "install", "resource", name, version, "--reinstall"],
        capture_output=True,
        text=True,
        env={**os.environ, **env(engine)},
        timeout=600,
    )
    return p.returncode == 0


def plugin_source(spec: dict, stamp: str | None, installed: bool, choice: str = "") -> str:
    """What to do for one plugin: "keep" it, try the "official" release (else build), or "build".

    stamp: how the installed plugin came (OFFICIAL, the stand-in's source hash, "module"; None:
    never installed by this tool). choice: VMP_PLUGINS."""
    want = source_hash(ROOT / spec["source"]) if "source" in spec else "module"
    built_current = stamp == want or (stamp is None and want == "module")  # a module build (older setups wrote no stamp)
    if choice == "build":
        return "keep" if installed and built_current else "build"
    if choice == "official":
        return "keep" if installed and stamp == OFFICIAL else "official"
    if installed and (stamp == OFFICIAL or built_current):
        return "keep"
    return "official" if stamp is None else "build"  # tried once; a changed stand-in is rebuilt


def ensure_plugins(engine: Path) -> None:
    """Each provider plugin at its pinned version: the official release when it can be had
    (tried once, when the plugin is not installed yet, or with VMP_PLUGINS=official), else built
    here (kubernetes from its official module; command from the project's stand-in, whose
    source change reinstalls it). Prints which one each run uses."""
    specs = pins()["plugins"]
    have = _installed_plugins(engine)
    for name, spec in specs.items():
        version = spec["version"]
        stamp_file = cache_dir() / "build" / f"pulumi-{name}-{version}" / "installed-source"
        stamp = stamp_file.read_text() if stamp_file.exists() else None
        source = plugin_source(spec, stamp, (name, version) in have, os.environ.get(PLUGIN_CHOICE, ""))
        standin = f"the project's stand-in ({spec['source']})" if "source" in spec else f"built from {spec['module']}"
        if source == "keep":
            progress(f"plugins: {name} {version} installed ({'the official release' if stamp == OFFICIAL else standin})")
            continue
        if source == "official":
            progress(f"plugins: {name} {version}: trying the official release")
            if _official_plugin(name, version, engine):
                stamp_file.parent.mkdir(parents=True, exist_ok=True)
                stamp_file.write_text(OFFICIAL)
                progress(f"plugins: {name} {version} installed: the official release")
                continue
            progress(f"plugins: {name} {version}: the official release cannot be had here; using {standin}")
        builder = {"kubernetes": _build_kubernetes_provider, "command": _build_command_provider}[name]
        binary = builder(spec)
        progress(f"plugins: installing {name} {version}: {standin}")
        run(["pulumi", "plugin", "install", "resource", name, version, "--file", str(binary), "--reinstall"], env=env(engine))
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(source_hash(ROOT / spec["source"]) if "source" in spec else "module")


def ensure() -> Path:
    ensure_python()
    engine = ensure_engine()
    ensure_plugins(engine)
    progress(f"engine ready: {engine}")
    return engine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", action="store_true", help="print export lines for the engine environment")
    args = ap.parse_args()
    try:
        engine = ensure()
    except (ToolError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.env:
        # TMPDIR is the private base: this process exits now, so tools/pulumi makes its own
        # run directory in it (and removes it when the engine exits).
        for k, v in env(engine, tmp=engine_tmp()).items():
            print(f"export {k}={json.dumps(v)}")
    else:
        print(engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
