"""Writes OCI image archives (the `oci-archive:` transport of skopeo) with the standard library only.

An archive is a tar of an OCI image layout: `oci-layout`, `index.json` (one manifest, annotated
with `org.opencontainers.image.ref.name`), and `blobs/sha256/<hex>` for the manifest, the config
and each layer. Everything is deterministic: layer entries are sorted, owned by 0:0 unless an entry
says otherwise, have mtime 0 and no user/group names; gzip headers carry mtime 0 and no file name;
JSON is written with sorted keys. The same inputs give the same bytes, so the same digests.

    from images.oci import directory, file, write_oci_archive
    write_oci_archive(out, [[file("/pause", source=binary, mode=0o755)]],
                      {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/pause"]}}, "3.10")
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One entry of a layer. `path` is where it lives in the image ("/pause", "opt/java/bin/java").

    kind is "file" (content from `data` or the file at `source`), "dir" or "symlink" (to `target`).
    """

    path: str
    kind: str = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    source: Path | None = None
    target: str = ""

    @property
    def name(self) -> str:
        """The entry's name inside the layer tar: relative, normalised, no leading slash."""
        p = PurePosixPath("/" + self.path.lstrip("/"))
        parts = [x for x in p.parts[1:] if x not in ("", ".")]
        if not parts or ".." in parts:
            raise ValueError(f"bad layer path: {self.path!r}")
        return "/".join(parts)


def file(path: str, *, data: bytes | None = None, source: Path | str | None = None, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    if (data is None) == (source is None):
        raise ValueError(f"{path}: give exactly one of data= or source=")
    return Entry(path, "file", mode, uid, gid, data=data, source=Path(source) if source is not None else None)


def directory(path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "dir", mode, uid, gid)


def symlink(path: str, target: str, *, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "symlink", 0o777, uid, gid, target=target)


def tree(src: Path | str, dest: str, *, uid: int = 0, gid: int = 0) -> list[Entry]:
    """Entries for a directory tree on disk placed at `dest` in the image: files keep their
    permission bits, symlinks stay symlinks, ownership is uid:gid (root by default)."""
    src = Path(src)
    out = [directory(dest, mode=stat.S_IMODE(src.stat().st_mode), uid=uid, gid=gid)]
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel_root = Path(root).relative_to(src)
        for n in sorted(dirs + files):
            p = Path(root) / n
            image_path = str(PurePosixPath(dest) / rel_root.as_posix() / n)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out.append(symlink(image_path, os.readlink(p), uid=uid, gid=gid))
            elif stat.S_ISDIR(st.st_mode):
                out.append(directory(image_path, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid))
            elif stat.S_ISREG(st.st_mode):
                out.append(file(image_path, source=p, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid))
            else:
                raise ValueError(f"unsupported file type in layer tree: {p}")
    return out


def _normalise(entries: Iterable[Entry]) -> list[Entry]:
    """Sorted by name, one entry per name (a later duplicate must equal the first), and every
    parent directory present (added as 0755 root:root when not given)."""
    by_name: dict[str, Entry] = {}
    for e in entries:
        n = e.name
        if n in by_name and by_name[n] != e:
            if not (e.kind == "dir" and by_name[n].kind == "dir"):
                raise ValueError(f"two different entries for {n!r} in one layer")
            continue
        by_name.setdefault(n, e)
    for n in list(by_name):
        parent = PurePosixPath(n).parent
        while str(parent) not in (".", ""):
            by_name.setdefault(str(parent), directory(str(parent)))
            parent = parent.parent
    return [by_name[n] for n in sorted(by_name)]


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through to `out` (if any)."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, b: bytes) -> int:
        self.sha.update(b)
        self.size += len(b)
        if self.out is not None:
            self.out.write(b)
        return len(b)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


def _tarinfo(name: str, kind: str, mode: int, uid: int, gid: int, size: int = 0, target: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}[kind]
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.uname = ti.gname = ""
    ti.mtime = 0
    ti.size = size
    ti.linkname = target
    return ti


def write_layer_tar(entries: Iterable[Entry], out: BinaryIO) -> None:
    """The uncompressed, deterministic layer tar of `entries`, written to `out`."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in _normalise(entries):
            if e.kind == "file":
                if e.data is not None:
                    tar.addfile(_tarinfo(e.name, "file", e.mode, e.uid, e.gid, len(e.data)), io.BytesIO(e.data))
                else:
                    assert e.source is not None
                    with open(e.source, "rb") as f:
                        size = os.fstat(f.fileno()).st_size
                        tar.addfile(_tarinfo(e.name, "file", e.mode, e.uid, e.gid, size), f)
            elif e.kind == "dir":
                tar.addfile(_tarinfo(e.name + "/", "dir", e.mode, e.uid, e.gid))
            elif e.kind == "symlink":
                tar.addfile(_tarinfo(e.name, "symlink", e.mode, e.uid, e.gid, target=e.target))
            else:
                raise ValueError(f"unknown entry kind {e.kind!r} for {e.path!r}")


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<hex>"
    size: int
    path: Path


def _layer_blob(entries: list[Entry], blob_dir: Path, compresslevel: int) -> tuple[Blob, str]:
    """Writes the gzipped layer into blob_dir; returns its blob and the diff_id of the plain tar."""
    tmp = blob_dir / f".layer-{os.getpid()}-{id(entries)}.tmp"
    with open(tmp, "wb") as raw:
        compressed = _HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=compresslevel) as gz:  # type: ignore[arg-type]
            plain = _HashingWriter(gz)  # type: ignore[arg-type]
            write_layer_tar(entries, plain)  # type: ignore[arg-type]
    hexd = compressed.sha.hexdigest()
    final = blob_dir / hexd
    tmp.replace(final)
    return Blob(f"sha256:{hexd}", compressed.size, final), f"sha256:{plain.sha.hexdigest()}"


def _json_bytes(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _json_blob(obj: dict, blob_dir: Path) -> Blob:
    data = _json_bytes(obj)
    hexd = hashlib.sha256(data).hexdigest()
    p = blob_dir / hexd
    p.write_bytes(data)
    return Blob(f"sha256:{hexd}", len(data), p)


def _iter_layout(layout: Path) -> Iterator[Path]:
    yield layout / "oci-layout"
    yield layout / "index.json"
    yield layout / "blobs"
    yield layout / "blobs" / "sha256"
    yield from sorted((layout / "blobs" / "sha256").iterdir())


def write_oci_archive(
    path: Path | str, layers: list[list[Entry]], config: dict, ref_name: str, *, compresslevel: int = 6, annotations: dict[str, str] | None = None
) -> str:
    """Writes the image as an OCI archive at `path` (via a temp file and a rename).

    `config` is the image configuration (architecture, os, config: {Entrypoint, User, ...});
    rootfs is filled in here, and created defaults to the epoch. Returns the manifest digest.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".oci-", dir=path.parent) as td:
        layout = Path(td) / "layout"
        blob_dir = layout / "blobs" / "sha256"
        blob_dir.mkdir(parents=True)
        layer_blobs, diff_ids = [], []
        for entries in layers:
            blob, diff_id = _layer_blob(list(entries), blob_dir, compresslevel)
            layer_blobs.append(blob)
            diff_ids.append(diff_id)
        cfg = json.loads(json.dumps(config))
        cfg.setdefault("created", EPOCH)
        cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        cfg_blob = _json_blob(cfg, blob_dir)
        manifest: dict = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": cfg_blob.digest, "size": cfg_blob.size},
            "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": b.digest, "size": b.size} for b in layer_blobs],
        }
        if annotations:
            manifest["annotations"] = dict(annotations)
        man_blob = _json_blob(manifest, blob_dir)
        desc: dict = {
            "mediaType": MEDIA_MANIFEST,
            "digest": man_blob.digest,
            "size": man_blob.size,
            "annotations": {REF_NAME: ref_name},
        }
        if cfg.get("os") and cfg.get("architecture"):
            desc["platform"] = {"architecture": cfg["architecture"], "os": cfg["os"]}
        (layout / "oci-layout").write_bytes(_json_bytes({"imageLayoutVersion": "1.0.0"}))
        (layout / "index.json").write_bytes(_json_bytes({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [desc]}))

        tmp = Path(td) / "archive.tar"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for p in _iter_layout(layout):
                rel = p.relative_to(layout).as_posix()
                if p.is_dir():
                    tar.addfile(_tarinfo(rel + "/", "dir", 0o755, 0, 0))
                else:
                    with open(p, "rb") as f:
                        tar.addfile(_tarinfo(rel, "file", 0o644, 0, 0, os.fstat(f.fileno()).st_size), f)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    return man_blob.digest


def read_oci_archive(path: Path | str) -> dict:
    """Reads an archive back: {"index", "manifest", "config", "blobs": {digest: bytes}}. For tests
    and checks; loads every blob into memory."""
    blobs: dict[str, bytes] = {}
    meta: dict[str, bytes] = {}
    with tarfile.open(path, "r") as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            data = tar.extractfile(m).read()  # type: ignore[union-attr]
            if m.name.startswith("blobs/sha256/"):
                blobs["sha256:" + m.name.rsplit("/", 1)[1]] = data
            else:
                meta[m.name] = data
    index = json.loads(meta["index.json"])
    manifest = json.loads(blobs[index["manifests"][0]["digest"]])
    config = json.loads(blobs[manifest["config"]["digest"]])
    return {"oci-layout": json.loads(meta["oci-layout"]), "index": index, "manifest": manifest, "config": config, "blobs": blobs}


def extract_layers(path: Path | str, dest: Path | str) -> None:
    """Unpacks the image's layers, in order, into `dest` (no whiteout handling: the project's
    images have none). Ownership is kept when running as root."""
    dest = Path(dest)
    with tarfile.open(path, "r") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        man = json.load(tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":", 1)[1]))  # type: ignore[arg-type]
        for layer in man["layers"]:
            member = tar.extractfile("blobs/sha256/" + layer["digest"].split(":", 1)[1])
            with tarfile.open(fileobj=member, mode="r:gz") as lt:
                kw = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
                lt.extractall(dest, numeric_owner=True, **kw)  # type: ignore[arg-type]
