"""Reading a protocol file: only a regular file of at most 1 MB is read (a device or a pipe
would hang the command), and a setting's bad value is refused with the setting's name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scorer.core.protocol import MAX_PROTOCOL_BYTES, ProtocolError, load


def test_a_setting_that_is_no_number_is_named(tmp_path: Path) -> None:
    for key in ("frozen_sdc", "adjudication_difference", "reread_share", "max_unused_share"):
        p = tmp_path / "p.toml"
        p.write_text(f'code = "T9"\n{key} = "abc"\n', encoding="utf-8")
        with pytest.raises(ProtocolError) as info:
            load(p)
        assert str(info.value) == f"{p}: {key}: must be a number, not 'abc'"
    p.write_text('code = "T9"\nfrozen_sdc = "1.5"\n', encoding="utf-8")
    assert load(p).frozen_sdc == 1.5


@pytest.mark.posix
def test_devices_pipes_and_folders_are_refused_unread(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="/dev/zero: not a regular file"):
        load(Path("/dev/zero"))
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ProtocolError, match="fifo.toml: not a regular file"):
        load(fifo)  # no writer: opening it must not wait for one
    with pytest.raises(ProtocolError, match="cannot read"):
        load(tmp_path)


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_PROTOCOL_BYTES + 1))
    with pytest.raises(ProtocolError) as info:
        load(big)
    assert str(info.value) == f"{big}: 1,000,001 bytes; a protocol file is at most 1,000,000"
