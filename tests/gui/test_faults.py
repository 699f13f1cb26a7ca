"""Faults while a reader scores (issue 12): the disk fills up, another program holds the
database locked. The reader is told the entry was not saved, nothing is half-written, and
work goes on when the fault clears (Retry). Real faults: a small tmpfs filled to the last
byte, and a second process holding SQLite's write lock past the busy timeout."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from scorer.core.methods import get_method
from scorer.gui.score_writer import ScoreWriter
from scorer.gui.scoring_grid import (
    GridModel,
    ScoringGrid,
    ScoringSample,
    build_scoring_sample,
    load_case,
)

SVH = get_method("svh")
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs: room for the database, and a disk that can really fill up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def open_grid(qtbot: QtBot, sample: ScoringSample) -> tuple[ScoringGrid, ScoreWriter]:
    ws, s = sample.workspace, sample.session
    case = load_case(ws.reading, s, ws.reading.open_case(s, sample.cases[0]))
    writer = ScoreWriter(ws.reading, s)
    grid = ScoringGrid(GridModel.from_case(case, submit=writer.submit), writer)
    qtbot.addWidget(grid)
    grid.show()
    return grid, writer


def fill(mnt: Path) -> Path:
    """Fill the disk to the last byte with a filler file."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def stored(sample: ScoringSample, grid: ScoringGrid) -> dict[object, object]:
    return dict(sample.workspace.reading.get_read(sample.session, grid.model.reads["A"]).scores)


@pytest.mark.posix
@needs_root
def test_a_full_disk_loses_nothing_and_scoring_goes_on_when_space_is_back(
    qtbot: QtBot, small_disk: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_scoring_sample(small_disk / "trial", patients=1, visits=2)
    grid, writer = open_grid(qtbot, sample)
    qtbot.keyClicks(grid.table, "12")
    qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=20000)
    assert grid.model.failed == 0
    before = stored(sample, grid)
    filler = fill(small_disk)
    try:
        qtbot.keyClicks(grid.table, "3210")
        qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=60000)
        assert grid.model.failed == 4
        errors = {c.error for c in grid.model.cells.values() if c.save == "failed"}
        assert errors and all("disk is full" in e and "nothing was saved" in e for e in errors)
        assert "not saved" in grid.save_label.text()
        assert grid.retry_button.isVisible()
        assert stored(sample, grid) == before  # nothing half-written
    finally:
        filler.unlink()
    grid.retry()
    qtbot.waitUntil(lambda: writer.pending_count == 0 and grid.model.failed == 0, timeout=20000)
    after = stored(sample, grid)
    assert len(after) == len(before) + 4
    assert sample.workspace.verify().ok
    assert writer.stop(10)
    sample.workspace.close()


HOLD = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=1)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


@pytest.mark.posix
def test_a_database_locked_by_another_program_is_reported_then_scoring_goes_on(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_scoring_sample(tmp_path / "trial", patients=1, visits=2)
    grid, writer = open_grid(qtbot, sample)
    db = str(sample.workspace.store.location.sqlite_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, db, "14"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        qtbot.keyClicks(grid.table, "2")
        qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=30000)
        waited = time.monotonic() - started
        assert grid.model.failed == 1
        cell = grid.model.cell("A", SVH.areas[0].area)
        assert "busy" in cell.error and "Nothing was saved" in cell.error
        assert waited >= 9  # the busy timeout was waited out first
        assert stored(sample, grid) == {}
    finally:
        holder.wait(30)
    grid.retry()
    qtbot.waitUntil(lambda: writer.pending_count == 0 and grid.model.failed == 0, timeout=20000)
    assert len(stored(sample, grid)) == 1
    assert writer.stop(10)
    sample.workspace.close()


@pytest.fixture
def failing_volume(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A 48 MB ext4 volume on a loop device, mounted with errors=remount-ro: when the kernel
    records a filesystem error it turns the volume read-only under the open database, as it
    does on a failing disk. Yields (mount point, image file)."""
    image = tmp_path / "volume.img"
    with image.open("wb") as f:
        f.truncate(48 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mnt = tmp_path / "volume"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)], check=True)
    try:
        yield mnt, image
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def turn_read_only(mnt: Path) -> None:
    """Record an ext4 error on the volume (the kernel's own test hook): the journal aborts and
    the kernel remounts the volume read-only, open files and all."""
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(mnt)], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path("/sys/fs/ext4", Path(source).name, "trigger_fs_error").write_text("scorer fault test\n")
    with pytest.raises(OSError) as refused:
        (mnt / "probe").write_bytes(b"x")
    assert refused.value.errno == errno.EROFS


def repair(mnt: Path, image: Path) -> None:
    """What the centre's IT does: unmount, check the filesystem, mount it again."""
    subprocess.run(["umount", str(mnt)], check=True)  # fails if the workstation pins it
    fsck = subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, text=True)
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr  # 1: errors corrected
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)], check=True)


@pytest.mark.posix
@needs_root
def test_a_database_turned_read_only_loses_nothing_and_scoring_goes_on_after_repair(
    qtbot: QtBot,
    failing_volume: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    mnt, image = failing_volume
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_scoring_sample(mnt / "trial", patients=1, visits=2)
    grid, writer = open_grid(qtbot, sample)
    qtbot.keyClicks(grid.table, "12")
    qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=20000)
    assert grid.model.failed == 0
    before = stored(sample, grid)
    turn_read_only(mnt)
    qtbot.keyClicks(grid.table, "3210")
    qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=60000)
    assert grid.model.failed == 4
    errors = {c.error for c in grid.model.cells.values() if c.save == "failed"}
    assert errors and all("read-only" in e and "Nothing was saved" in e for e in errors), errors
    assert str(mnt / "trial") in next(iter(errors))  # it names where the database is
    assert "not saved" in grid.save_label.text()
    assert grid.retry_button.isVisible()
    # The failed writes closed the store's connections: the volume can be repaired under the
    # running window, and what is on it is exactly what was acknowledged before the fault.
    repair(mnt, image)
    assert stored(sample, grid) == before
    grid.retry()
    qtbot.waitUntil(lambda: writer.pending_count == 0 and grid.model.failed == 0, timeout=20000)
    after = stored(sample, grid)
    assert len(after) == len(before) + 4
    assert sample.workspace.verify().ok
    assert writer.stop(10)
    sample.workspace.close()


def test_a_change_made_on_another_workstation_is_a_conflict_not_lost(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same reader on two workstations: the second changes an area after the first
    loaded the case; the first's change of that area is refused with the value now stored,
    nothing is overwritten unseen, and Retry then overwrites deliberately."""
    from scorer.core.reads import AreaScore

    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_scoring_sample(tmp_path / "trial", patients=1, visits=2)
    grid, writer = open_grid(qtbot, sample)
    ws = sample.workspace
    other = ws.accounts.login(sample.reader, sample.password)  # the other workstation's session
    area = SVH.areas[0].area
    ws.reading.set_score(other, grid.model.reads["A"], area, AreaScore.scored(4))
    qtbot.keyClicks(grid.table, "2")  # A, first area, over a value this grid never saw
    qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=20000)
    cell = grid.model.cell("A", area)
    assert cell.save == "failed"
    assert "changed on another workstation" in cell.error and "is now 4" in cell.error
    assert stored(sample, grid)[area] == AreaScore.scored(4)  # the other's value stands
    grid.retry()  # the reader has seen it and keeps their own
    qtbot.waitUntil(lambda: writer.pending_count == 0 and grid.model.failed == 0, timeout=20000)
    assert stored(sample, grid)[area] == AreaScore.scored(2)
    assert writer.stop(10)
    ws.close()
