"""An imported film whose patient ID starts with - + = or @ (a spreadsheet would run it as a
formula, and reads CSVs keep IDs raw) is imported unassigned and flagged; no patient is made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from scorer.imaging.manifest import parse_manifest
from tests.intake.conftest import Desk
from tests.intake.dicom_maker import small_radiograph


def test_a_formula_led_patient_id_is_flagged_not_taken(desk: Desk, tmp_path: Path) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    for name, width in (("f1.png", 80), ("f2.png", 90)):
        Image.fromarray(small_radiograph(width, 60).astype(np.uint16)).save(src / name)
    manifest = parse_manifest(
        "file,patient,visit,date,regions\nf1.png,=cmd,W0,2024-02-01,LH\nf2.png,P-1,W0,,LH\n"
    )
    res = desk.ws.images.import_images(desk.s, "T1", [src], manifest).to_dict()
    by = {Path(f["file"]).name: f for f in res["files"]}
    assert by["f1.png"]["status"] == by["f2.png"]["status"] == "imported"
    assert any("patient ID not taken: it starts with '='" in f for f in by["f1.png"]["flags"])
    assert not any("patient ID not taken" in f for f in by["f2.png"]["flags"])
    assert [p.real_id for p in desk.ws.trials.list_patients(desk.s, "T1")] == ["P-1"]
