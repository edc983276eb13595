"""Builds the platform's own container images as OCI archives, cached by their inputs' hash.

No container engine is usable on the build machines, so the images are assembled here (oci.py
writes the archives) and the platform pushes them into its private registry with
`skopeo copy oci-archive:<file> docker://<registry>/<name>:<tag>`.

  <cache>/images/pause-3.10.oci.tar            the pod sandbox: images/pause (static Go)
  <cache>/images/eureka-server-1.1.0.oci.tar   Spring Cloud Netflix Eureka: images/eureka-server
                                               (Maven) on a jlink'd JRE and this machine's glibc
  <cache>/images/example-service-1.0.0.oci.tar the example microservice (a Eureka client), the same way;
  <cache>/images/example-service-2.0.0.oci.tar   the same source at the next version (rolling updates)
  <cache>/images/coredns-<v>.oci.tar           cluster DNS: images/coredns/main.go over the
                                               github.com/coredns/coredns module (static Go)
  <cache>/images/metallb-{controller,speaker}-<v>.oci.tar   the LoadBalancer: go.universe.tf/metallb
  <cache>/images/metallb-<v>.manifests.yaml    its CRDs and RBAC, taken from the module

Each archive is rebuilt only when the hash of its inputs differs from the one recorded beside it
in <archive>.inputs. The inputs are what decides the archive's bytes: the image's source files
(by their path inside the image's own directory, so moving that directory rebuilds nothing),
the content of this file and of oci.py, and the toolchain versions. verify.py is no input.

    python3 -m tools.images             # build what is missing or stale, print the archive paths
    python3 -m tools.images --verify    # also: skopeo inspect both, and run Eureka (verify.py)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from tools.common import ToolError, cache_dir, go_build, pins, progress, run, write_if_changed

from . import oci

PAUSE_TAG = "3.10"
HERE = Path(__file__).resolve().parent
PAUSE_SRC = HERE / "pause"
EUREKA_SRC = HERE / "eureka-server"
EXAMPLE_SRC = HERE / "example-service"
COREDNS_SRC = HERE / "coredns"
METALLB_SRC = HERE / "metallb"
COREDNS_UID = 65532
NOBODY = 65534
EUREKA_UID = 10001

# What Spring Boot + Eureka need at run time. jdeps finds most of it statically and is added
# on top; service providers (jdk.crypto.ec for TLS, jdk.naming.dns for Eureka's DNS lookups)
# are invisible to it and listed here.
JRE_MODULES = (
    "java.base", "java.logging", "java.management", "java.naming", "java.net.http", "java.security.jgss",
    "java.instrument", "java.sql", "java.desktop", "java.xml", "jdk.unsupported", "java.compiler",
    "jdk.crypto.ec", "java.rmi", "java.scripting", "jdk.management", "jdk.naming.dns",
)  # fmt: skip


def images_dir() -> Path:
    d = cache_dir() / "images"
    d.mkdir(parents=True, exist_ok=True)
    return d


def output(cmd: list[str], **kw) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise ToolError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout + r.stderr


def inputs_key(sources: Path, extra: list[str]) -> str:
    """The hash an archive is cached under: the builder (this file) and the writer (oci.py) by
    content, each source file by its path relative to `sources` and its content, then `extra`
    (toolchain versions, flags). Where the checkout or the source directory lives is no input."""
    h = hashlib.sha256()
    named = [("builder", Path(__file__)), ("oci-writer", Path(oci.__file__))]
    named += [(f"source {p.relative_to(sources).as_posix()}", p) for p in _source_files(sources)]
    for name, p in named:
        h.update(f"file {name}\n".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    for x in extra:
        h.update(f"extra {x}\n".encode())
    return h.hexdigest()


def _source_files(d: Path) -> list[Path]:
    skip = {"target", ".idea", ".mvn"}
    out = []
    for root, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if x not in skip and not x.startswith("."))
        out += [Path(root) / f for f in sorted(files)]
    return out


def _cached(archive: Path, inputs: str) -> bool:
    stamp = archive.with_name(archive.name + ".inputs")
    return archive.exists() and stamp.exists() and stamp.read_text().strip() == inputs


def _stamp(archive: Path, inputs: str) -> None:
    stamp = archive.with_name(archive.name + ".inputs")
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(inputs + "\n")
    tmp.rename(stamp)


# --- pause -----------------------------------------------------------------------------------


def build_pause() -> Path:
    archive = images_dir() / f"pause-{PAUSE_TAG}.oci.tar"
    go_version = output(["go", "version"]).strip() if shutil.which("go") else "no-go"
    inputs = inputs_key(PAUSE_SRC, [go_version, "CGO_ENABLED=0 -trimpath -buildvcs=false -s -w"])
    if _cached(archive, inputs):
        progress(f"pause {PAUSE_TAG}: cached")
        return archive
    work = cache_dir() / "build" / "images" / "pause"
    work.mkdir(parents=True, exist_ok=True)
    binary = work / "pause"
    progress(f"pause {PAUSE_TAG}: go build")
    go_build(PAUSE_SRC, ".", binary, ldflags="-s -w", log=work / "build.log")
    layer = [oci.file("/pause", source=binary, mode=0o755)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"},
    }
    digest = oci.write_oci_archive(archive, [layer], config, PAUSE_TAG)
    _stamp(archive, inputs)
    progress(f"pause {PAUSE_TAG}: {archive} ({digest})")
    return archive


# --- eureka-server ---------------------------------------------------------------------------


def _jdk_versions() -> list[str]:
    """Versions of the JDK and Maven that go into the image (a tool that is missing reads as such)."""
    out = []
    for cmd in (["java", "-version"], ["jlink", "--version"], ["mvn", "-v"]):
        try:
            out.append(output(cmd).strip().splitlines()[0])
        except (OSError, ToolError, IndexError):
            out.append(f"{cmd[0]}: missing")
    return out


def _maven_package(source: Path, name: str, tag: str, work: Path, log: Path) -> Path:
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(source, src, ignore=shutil.ignore_patterns("target"))
    run(["mvn", "-q", "-B", "-DskipTests", f"-Drevision={tag}", "package"], cwd=src, log=log)
    jar = src / "target" / f"{name}-{tag}.jar"
    if not jar.exists():
        raise ToolError(f"maven finished but {jar} is missing; see {log}")
    return jar


def _jdeps_modules(jar: Path, work: Path, log: Path) -> set[str]:
    """The modules jdeps sees the Boot jar's classes and libraries use (empty if jdeps fails)."""
    exploded = work / "exploded"
    if exploded.exists():
        shutil.rmtree(exploded)
    exploded.mkdir()
    import zipfile

    with zipfile.ZipFile(jar) as z:
        z.extractall(exploded)
    libs = sorted((exploded / "BOOT-INF" / "lib").glob("*.jar"))
    cmd = ["jdeps", "--ignore-missing-deps", "--print-module-deps", "--multi-release", "17", "--recursive", "-q",
           "--class-path", os.pathsep.join(map(str, libs)), str(exploded / "BOOT-INF" / "classes"), *map(str, libs)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "a") as f:
        f.write(f"$ jdeps ... (rc {r.returncode})\n{r.stdout}{r.stderr[-4000:]}\n")
    shutil.rmtree(exploded)
    line = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else ""
    if not line or " " in line:
        progress("eureka-server: jdeps gave no module list; using the known list alone")
        return set()
    return set(line.split(","))


def _jlink(modules: list[str], jre: Path, log: Path) -> None:
    if jre.exists():
        shutil.rmtree(jre)
    # No --generate-cds-archive: JDK 17's CDS archives differ from run to run, which would make
    # the runtime layer's digest change on every rebuild.
    cmd = ["jlink", "--add-modules", ",".join(modules), "--strip-debug", "--no-man-pages", "--no-header-files", "--compress=2",
           "--output", str(jre)]  # fmt: skip
    run(cmd, log=log)


def _ldd_deps(files: list[Path], inside: Path) -> list[Path]:
    """Shared libraries (as the paths ldd names) the files link to, outside the `inside` tree."""
    found: set[str] = set()
    missing: set[str] = set()
    # The JRE's own libraries (libjvm.so in lib/server) have no RUNPATH: the launcher loads them.
    own = {p.name for p in inside.rglob("*.so*")}
    for f in files:
        r = subprocess.run(["ldd", str(f)], capture_output=True, text=True)
        if r.returncode != 0:
            continue  # not a dynamic executable
        for line in r.stdout.splitlines():
            line = line.strip()
            if "=>" in line:
                name, rest = (x.strip() for x in line.split("=>", 1))
                if rest.startswith("not found"):
                    if name not in own:
                        missing.add(f"{name} (for {f.name})")
                    continue
                path = rest.split(" (", 1)[0].strip()
            elif line.startswith("/"):
                path = line.split(" (", 1)[0].strip()
            else:
                continue  # linux-vdso.so.1
            if path and not Path(path).resolve().is_relative_to(inside.resolve()):
                found.add(path)
    for m in sorted(missing):
        progress(f"eureka-server: ldd: not found on this machine, left out: {m}")
    return [Path(p) for p in sorted(found)]


def _passwd_group() -> list[oci.Entry]:
    passwd = (
        f"root:x:0:0:root:/root:/sbin/nologin\napp:x:{EUREKA_UID}:{EUREKA_UID}:app:/app:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    )
    group = f"root:x:0:\napp:x:{EUREKA_UID}:\nnogroup:x:65534:\n"
    return [
        oci.file("/etc/passwd", data=passwd.encode()),
        oci.file("/etc/group", data=group.encode()),
        oci.file("/etc/nsswitch.conf", data=b"passwd: files\ngroup: files\nhosts: files dns\n"),
    ]


def build_eureka() -> Path:
    return build_spring_boot(EUREKA_SRC, "eureka-server", pins()["images"]["eureka-server"], 8761)


def build_example(tag: str) -> Path:
    """The example microservice (images/example-service): a Spring Boot Eureka client at `tag`
    (each pinned version is the same source; its answers name the version)."""
    return build_spring_boot(EXAMPLE_SRC, "example-service", tag, 8080)


def build_spring_boot(source: Path, name: str, tag: str, port: int) -> Path:
    """A Spring Boot jar (Maven, from `source`) on a jlink'd JRE and this machine's glibc."""
    archive = images_dir() / f"{name}-{tag}.oci.tar"
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown-libc"
    inputs = inputs_key(source, [*_jdk_versions(), glibc, ",".join(JRE_MODULES), f"revision {tag}"])
    if _cached(archive, inputs):
        progress(f"{name} {tag}: cached")
        return archive
    for tool in ("mvn", "jlink", "jdeps", "ldd"):
        if not shutil.which(tool):
            raise ToolError(f"{tool} is needed to build the {name} image (Maven, a JDK 17 and glibc's ldd)")
    work = cache_dir() / "build" / "images" / name
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    log.write_text("")

    progress(f"{name} {tag}: mvn package (first run fills ~/.m2)")
    jar = _maven_package(source, name, tag, work, log)
    progress(f"{name}: jdeps")
    modules = sorted(set(JRE_MODULES) | _jdeps_modules(jar, work, log))
    progress(f"{name}: jlink {','.join(modules)}")
    jre = work / "jre"
    _jlink(modules, jre, log)

    elf_files = [jre / "bin" / "java", *sorted(p for p in (jre / "lib").rglob("*.so") if p.is_file())]
    libs = _ldd_deps(elf_files, jre)
    progress(f"{name}: {len(libs)} shared libraries from this machine: {' '.join(map(str, libs))}")

    runtime: list[oci.Entry] = [
        oci.directory("/tmp", mode=0o1777),
        oci.directory("/app"),
        *_passwd_group(),
        *oci.tree(jre, "/opt/java"),
    ]
    for lib in libs:
        real = lib.resolve()
        runtime.append(oci.file(str(lib), source=real, mode=real.stat().st_mode & 0o7777))
    app = [oci.file("/app/app.jar", source=jar)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/opt/java/bin/java", "-jar", "/app/app.jar"],
            "User": f"{EUREKA_UID}:{EUREKA_UID}",
            "ExposedPorts": {f"{port}/tcp": {}},
            "WorkingDir": "/app",
            "Env": ["PATH=/opt/java/bin:/usr/bin:/bin"],
            "Labels": {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": tag,
            },
        },
    }
    progress(f"{name}: writing the OCI archive (runtime layer + app layer)")
    digest = oci.write_oci_archive(archive, [runtime, app], config, tag)
    _stamp(archive, inputs)
    progress(f"{name} {tag}: {archive} ({digest})")
    return archive


# --- Go modules: coredns, metallb ------------------------------------------------------------


def _go_version() -> str:
    return output(["go", "version"]).strip() if shutil.which("go") else "no-go"


def _wrapper(work: Path, name: str, go: str, requires: dict[str, str]) -> None:
    """A wrapper module requiring the upstream modules (go.sum is filled by -mod=mod)."""
    req = "".join(f"\t{m} {v}\n" for m, v in sorted(requires.items()))
    write_if_changed(work / "go.mod", f"module vmplatform.local/images/{name}\n\ngo {go}\n\nrequire (\n{req})\n")


def _static_image(archive: Path, binary: Path, path: str, user: int, tag: str, title: str, ports: list[str]) -> str:
    layer = [oci.directory("/tmp", mode=0o1777), oci.file(path, source=binary, mode=0o755)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": [path],
            "User": f"{user}:{user}",
            "WorkingDir": "/",
            "ExposedPorts": {p: {} for p in ports},
            "Labels": {"org.opencontainers.image.title": title, "org.opencontainers.image.version": tag},
        },
    }
    return oci.write_oci_archive(archive, [layer], config, tag)


def build_coredns() -> Path:
    version = pins()["images"]["coredns"]
    tag = version.removeprefix("v")
    archive = images_dir() / f"coredns-{tag}.oci.tar"
    inputs = inputs_key(COREDNS_SRC, [_go_version(), f"github.com/coredns/coredns {version}", "CGO_ENABLED=0 -trimpath -s -w"])
    if _cached(archive, inputs):
        progress(f"coredns {tag}: cached")
        return archive
    work = cache_dir() / "build" / "images" / "coredns"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COREDNS_SRC / "main.go", work / "main.go")
    _wrapper(work, "coredns", "1.26.0", {"github.com/coredns/coredns": version})
    progress(f"coredns {tag}: go build (a few minutes on 2 cores, cold)")
    binary = work / "coredns"
    go_build(work, ".", binary, ldflags=f"-s -w -X github.com/coredns/coredns/coremain.GitCommit=vm-platform-{version}", log=work / "build.log")
    digest = _static_image(archive, binary, "/coredns", COREDNS_UID, tag, "coredns", ["53/udp", "53/tcp"])
    _stamp(archive, inputs)
    progress(f"coredns {tag}: {archive} ({digest})")
    return archive


def metallb_manifests_path(version: str) -> Path:
    return images_dir() / f"metallb-{version}.manifests.yaml"


def build_metallb() -> list[Path]:
    """The controller and speaker archives, and the module's CRDs and RBAC as one YAML file."""
    version = pins()["images"]["metallb"]
    module = "go.universe.tf/metallb"
    archives = [images_dir() / f"metallb-{b}-{version}.oci.tar" for b in ("controller", "speaker")]
    manifests = metallb_manifests_path(version)
    inputs = inputs_key(METALLB_SRC, [_go_version(), f"{module} {version}", "CGO_ENABLED=0 -trimpath -s -w"])
    if all(_cached(a, inputs) for a in archives) and _cached(manifests, inputs):
        progress(f"metallb {version}: cached")
        return archives
    work = cache_dir() / "build" / "images" / "metallb"
    work.mkdir(parents=True, exist_ok=True)
    _wrapper(work, "metallb", "1.24.0", {module: version})
    ldflags = "-s -w"
    for binary, archive in zip(("controller", "speaker"), archives, strict=True):
        progress(f"metallb {version}: go build {binary} (a few minutes on 2 cores, cold)")
        out = work / binary
        go_build(work, f"{module}/{binary}", out, ldflags=ldflags, log=work / "build.log")
        # The speaker answers ARP with raw sockets and binds memberlist on the host network: root.
        user = 0 if binary == "speaker" else NOBODY
        ports = ["7472/tcp", "7946/tcp", "7946/udp"] if binary == "speaker" else ["7472/tcp"]
        digest = _static_image(archive, out, f"/{binary}", user, version, f"metallb-{binary}", ports)
        _stamp(archive, inputs)
        progress(f"metallb {binary} {version}: {archive} ({digest})")
    src = Path(output(["go", "list", "-m", "-f", "{{.Dir}}", module], cwd=work, env={**os.environ, "GOFLAGS": "-mod=mod"}).strip())
    docs = [f"# From {module}@{version}: config/crd/bases and config/rbac, copied by images/build.py.\n"]
    for part in [*sorted((src / "config" / "crd" / "bases").glob("*.yaml")), src / "config/rbac/role.yaml", src / "config/rbac/service-accounts.yaml"]:
        docs.append(f"---\n# {part.relative_to(src).as_posix()}\n{part.read_text().strip()}\n")
    write_if_changed(manifests, "".join(docs))
    _stamp(manifests, inputs)
    progress(f"metallb {version}: manifests {manifests} ({len(docs) - 1} files)")
    return archives


def ensure() -> list[Path]:
    """Build (or take from the cache) every image the stacks load into their registries."""
    tags = pins()["images"]
    examples = [build_example(tags[k]) for k in ("example-service", "example-service-next")]
    return [build_pause(), build_eureka(), *examples, build_coredns(), *build_metallb()]
