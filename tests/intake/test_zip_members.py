"""An archive's members as the import lists them: a name that climbs out of the archive
(``../``, an absolute path, backslashes) is skipped with that reason, its bytes never read; a
hidden member is skipped as hidden; and an archive of 10,000 members is read once, not once
per member (opening a zip parses its whole central directory: per member, that was minutes)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from scorer.imaging.sources import HIDDEN_SKIPPED, UNSAFE_MEMBER, find_files


def test_member_names_that_climb_out_are_skipped_as_unsafe(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../up.dcm", b"x")
        z.writestr("a/../../b.dcm", b"x")
        z.writestr("c\\..\\d.dcm", b"x")
        z.writestr("ok/.hidden.dcm", b"x")
        z.writestr("ok/film.dcm", b"DICM")
    found = {s.name.split("!", 1)[1]: s for s in find_files([archive])}
    assert found["../up.dcm"].skipped == UNSAFE_MEMBER
    assert found["a/../../b.dcm"].skipped == UNSAFE_MEMBER
    assert found["c\\..\\d.dcm"].skipped == UNSAFE_MEMBER
    assert found["ok/.hidden.dcm"].skipped == HIDDEN_SKIPPED
    assert not found["ok/film.dcm"].skipped and found["ok/film.dcm"].read() == b"DICM"


def test_ten_thousand_members_are_read_from_one_open_archive(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(10_000):
            z.writestr(f"f{i:05}.dcm", i.to_bytes(4, "big"))
    opened = 0
    real = zipfile.ZipFile.__init__

    def counting(self: zipfile.ZipFile, *args: object, **kwargs: object) -> None:
        nonlocal opened
        opened += 1
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    zipfile.ZipFile.__init__ = counting  # type: ignore[method-assign]
    try:
        sources = list(find_files([archive]))
        data = [s.read() for s in sources]
    finally:
        zipfile.ZipFile.__init__ = real  # type: ignore[method-assign]
    assert [int.from_bytes(d, "big") for d in data] == list(range(10_000))
    # Listed once and read from one open archive (not 10,001 openings).
    assert opened <= 3, opened
