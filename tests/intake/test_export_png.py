"""`scorer image export-png`: what a reader sees of an imported real CR radiograph."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from scorer.cli import main
from tests.intake.conftest import COORD_PW, Desk


def test_export_png_of_a_real_cr_file_is_bone_bright_and_windowed(
    desk: Desk,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(get_testdata_file("RG3_J2KR.dcm", download=False), src / "hand.dcm")
    res = desk.ws.images.import_images(desk.s, "T1", [src]).to_dict()
    code = res["files"][0]["image"]
    desk.ws.close()
    out = tmp_path / "hand.png"

    def cli(*extra: str) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(COORD_PW + "\n"))
        return main(
            [
                "image",
                "export-png",
                code,
                "--out",
                str(out),
                *extra,
                "--db",
                str(desk.db),
                "--user",
                "cora",
                "--password-stdin",
            ]
        )

    assert cli() == 0
    png = np.asarray(Image.open(out))
    original = pydicom.dcmread(src / "hand.dcm")
    assert png.shape == original.pixel_array.shape and png.dtype == np.uint8
    # MONOCHROME1: high stored values are air. Shown bone bright, air must come out dark.
    stored = original.pixel_array.astype(float)
    air = stored >= np.percentile(stored, 95)
    dense = stored <= np.percentile(stored, 20)
    assert png[air].mean() < png[dense].mean()
    assert Image.open(out).info.get("dpi") is None and not Image.open(out).text
    assert cli("--window", "500,200", "--max-size", "400") == 0
    small = np.asarray(Image.open(out))
    assert max(small.shape) == 400
    assert cli("--window", "bad") == 1
    assert "CENTER,WIDTH" in capsys.readouterr().err
