"""images/build.py: the cache key of an image archive depends on what decides its bytes, not on
where the checkout or the image's source directory lives."""

from __future__ import annotations

import shutil
from pathlib import Path

from images import build


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_a_moved_source_keeps_its_key(tmp_path: Path):
    here = build.inputs_key(build.PAUSE_SRC, ["go1.26"])
    moved = _copy(build.PAUSE_SRC, tmp_path / "elsewhere" / "pause-moved")
    assert build.inputs_key(moved, ["go1.26"]) == here


def test_content_names_and_toolchain_change_the_key(tmp_path: Path):
    src = _copy(build.PAUSE_SRC, tmp_path / "pause")
    base = build.inputs_key(src, ["go1.26"])
    assert build.inputs_key(src, ["go1.27"]) != base
    main = src / "main.go"
    main.write_text(main.read_text() + "\n// changed\n")
    changed = build.inputs_key(src, ["go1.26"])
    assert changed != base
    main.rename(src / "pause.go")
    assert build.inputs_key(src, ["go1.26"]) not in (base, changed)


def test_build_outputs_and_editor_files_are_no_input(tmp_path: Path):
    src = _copy(build.EUREKA_SRC, tmp_path / "eureka-server")
    base = build.inputs_key(src, [])
    (src / "target").mkdir()
    (src / "target" / "eureka-server-1.1.0.jar").write_bytes(b"built")
    (src / ".idea").mkdir()
    (src / ".idea" / "workspace.xml").write_text("<x/>")
    assert build.inputs_key(src, []) == base
