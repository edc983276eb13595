"""images/oci.py: the OCI archives the project builds its images into (structure, digests, determinism)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from images import oci

CONFIG = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/pause"], "User": "65535:65535"}}


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as t:
        return {m.name: m for m in t.getmembers()}


def _layer_members(layer_gz: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer_gz))) as t:
        return t.getmembers()


@pytest.fixture
def sample(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "bin"
    src.write_bytes(b"\x7fELF fake binary")
    layers = [
        [oci.file("/pause", source=src, mode=0o755)],
        [
            oci.directory("/tmp", mode=0o1777),
            oci.file("etc/passwd", data=b"app:x:10001:10001::/app:/sbin/nologin\n"),
            oci.file("/app/data/x.txt", data=b"x", uid=10001, gid=10001),
            oci.symlink("/app/link", "data/x.txt"),
        ],
    ]
    out = tmp_path / "img.oci.tar"
    digest = oci.write_oci_archive(out, layers, CONFIG, "3.10")
    return out, digest


def test_layout_members_and_index(sample: tuple[Path, str]) -> None:
    archive, digest = sample
    members = _members(archive)
    assert {"oci-layout", "index.json", "blobs", "blobs/sha256"} <= set(members)
    assert members["blobs"].isdir() and members["blobs/sha256"].isdir()
    blobs = [n for n in members if n.startswith("blobs/sha256/")]
    assert all(members[n].isfile() for n in blobs)
    assert len(blobs) == 4  # two layers, the config, the manifest
    r = oci.read_oci_archive(archive)
    assert r["oci-layout"] == {"imageLayoutVersion": "1.0.0"}
    idx = r["index"]
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == oci.MEDIA_INDEX
    (desc,) = idx["manifests"]
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert desc["annotations"] == {"org.opencontainers.image.ref.name": "3.10"}
    assert desc["digest"] == digest
    assert desc["platform"] == {"architecture": "amd64", "os": "linux"}


def test_every_blob_is_named_and_sized_by_its_sha256(sample: tuple[Path, str]) -> None:
    archive, _ = sample
    r = oci.read_oci_archive(archive)
    for digest, data in r["blobs"].items():
        assert _sha(data) == digest
    desc = r["index"]["manifests"][0]
    assert desc["size"] == len(r["blobs"][desc["digest"]])
    man = r["manifest"]
    assert man["schemaVersion"] == 2 and man["mediaType"] == oci.MEDIA_MANIFEST
    assert man["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    for d in [man["config"], *man["layers"]]:
        assert d["size"] == len(r["blobs"][d["digest"]])
    assert [d["mediaType"] for d in man["layers"]] == [oci.MEDIA_LAYER_GZIP] * 2


def test_config_diff_ids_are_sha256_of_uncompressed_layers(sample: tuple[Path, str]) -> None:
    archive, _ = sample
    r = oci.read_oci_archive(archive)
    cfg = r["config"]
    assert cfg["rootfs"]["type"] == "layers"
    assert cfg["rootfs"]["diff_ids"] == [_sha(gzip.decompress(r["blobs"][d["digest"]])) for d in r["manifest"]["layers"]]
    assert cfg["config"] == {"Entrypoint": ["/pause"], "User": "65535:65535"}
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64")


def test_layer_entries_are_sorted_normalised_and_owned(sample: tuple[Path, str]) -> None:
    archive, _ = sample
    r = oci.read_oci_archive(archive)
    first, second = (r["blobs"][d["digest"]] for d in r["manifest"]["layers"])
    # gzip header: no file name flag, mtime 0
    assert first[:3] == b"\x1f\x8b\x08" and first[3] & 0x08 == 0 and first[4:8] == b"\0\0\0\0"
    (pause,) = _layer_members(first)
    assert pause.name == "pause" and pause.isfile() and pause.mode == 0o755 and pause.size == len(b"\x7fELF fake binary")
    ms = _layer_members(second)
    names = [m.name for m in ms]
    assert names == sorted(names)
    assert names == ["app", "app/data", "app/data/x.txt", "app/link", "etc", "etc/passwd", "tmp"]  # parents added
    by = {m.name: m for m in ms}
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in ms)
    assert by["tmp"].isdir() and by["tmp"].mode == 0o1777
    assert by["app"].isdir() and by["app"].mode == 0o755 and (by["app"].uid, by["app"].gid) == (0, 0)
    assert (by["app/data/x.txt"].uid, by["app/data/x.txt"].gid) == (10001, 10001)
    assert (by["etc/passwd"].uid, by["etc/passwd"].mode) == (0, 0o644)
    assert by["app/link"].issym() and by["app/link"].linkname == "data/x.txt"


def test_output_is_deterministic(tmp_path: Path) -> None:
    layers = [[oci.file("/a", data=b"1"), oci.file("/b/c", data=b"2", mode=0o600)]]
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    oci.write_oci_archive(a, layers, CONFIG, "t")
    oci.write_oci_archive(b, [list(reversed(layers[0]))], CONFIG, "t")  # entry order does not matter
    assert a.read_bytes() == b.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_tree_and_extract_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "jre"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "java").write_bytes(b"java")
    (src / "bin" / "java").chmod(0o755)
    (src / "legal").mkdir()
    (src / "legal" / "LICENSE").symlink_to("../bin/java")
    archive = tmp_path / "x.tar"
    oci.write_oci_archive(archive, [oci.tree(src, "/opt/java"), [oci.file("/app/app.jar", data=b"jar")]], CONFIG, "1.0.0")
    dest = tmp_path / "rootfs"
    dest.mkdir()
    oci.extract_layers(archive, dest)
    assert (dest / "opt/java/bin/java").read_bytes() == b"java"
    assert (dest / "opt/java/bin/java").stat().st_mode & 0o777 == 0o755
    assert (dest / "opt/java/legal/LICENSE").is_symlink()
    assert (dest / "app/app.jar").read_bytes() == b"jar"


def test_conflicting_entries_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        oci.write_oci_archive(tmp_path / "x.tar", [[oci.file("/a", data=b"1"), oci.file("a", data=b"2")]], CONFIG, "t")
    with pytest.raises(ValueError):
        oci.file("/a")
    with pytest.raises(ValueError):
        oci.write_oci_archive(tmp_path / "y.tar", [[oci.file("/../etc/x", data=b"1")]], CONFIG, "t")
