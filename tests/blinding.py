"""What the blinding tests share: the demo's own files for two patients, everything in them
that would betray a patient, a visit or a date (the planted identifiers), the demo built on
them, and every text a window shows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pydicom
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMainWindow, QWidget

from scorer.demo import repo_samples_dir, run_demo

PATIENTS = ("DEMO-101", "DEMO-102")
ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.StatusTipRole)


def mini_demo_samples(folder: Path) -> Path:
    """The demo's committed files for two patients, with their manifest and truth rows."""
    source = repo_samples_dir()
    folder.mkdir(parents=True)
    for patient in PATIENTS:
        shutil.copytree(source / patient, folder / patient)
    for name in ("manifest.csv", "ground-truth-svh.csv"):
        lines = (source / name).read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [lines[0]] + [ln for ln in lines[1:] if any(p in ln for p in PATIENTS)]
        (folder / name).write_text("".join(kept), encoding="utf-8")
    return folder


#: What de-identification removes from every file: no role ever sees it.
REMOVED = (
    "PatientBirthDate",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "ClinicalTrialSiteName",
    "OtherPatientIDs",
)
#: What a coordinator may know (real IDs, visit dates and labels) but a reader may not.
KEPT_FOR_COORDINATORS = (
    "PatientID",
    "StudyDate",
    "AcquisitionDate",
    "ClinicalTrialSubjectID",
    "ClinicalTrialTimePointDescription",
)


def _from_files(samples: Path, keywords: tuple[str, ...], file_names: bool) -> set[str]:
    found: set[str] = set()
    for path in samples.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        name = ds.PatientName
        found |= {str(name), name.family_name, name.given_name}
        found |= {str(ds.get(k)) for k in keywords if ds.get(k)}
        if file_names:
            found |= {path.name, f"{path.parent.name}/{path.name}"}
    return found


def planted(samples: Path) -> set[str]:
    """Everything in the source files that would betray a patient, a visit or a date."""
    found = _from_files(samples, REMOVED + KEPT_FOR_COORDINATORS, file_names=True)
    with (samples / "manifest.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            y, m, d = row["date"].split("-")
            found |= {row["date"], f"{y}{m}{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}"}
            found.add(row["patient"])
    return {f for f in found if f and len(f) >= 3}


def deidentified_away(samples: Path) -> set[str]:
    """What de-identification removes: no role ever sees it (a coordinator knows real IDs and
    visit dates, which the manifest gives, but never names, birth dates and the like)."""
    return {g for g in _from_files(samples, REMOVED, file_names=False) if g and len(g) >= 3}


def visible_texts(window: QMainWindow) -> list[str]:
    """Every text of the window and of every top-level widget (dialogs, popups)."""
    texts: list[str] = [window.windowTitle(), window.statusBar().currentMessage()]
    widgets: list[QWidget] = []
    for top in QApplication.topLevelWidgets():
        widgets += [top, *top.findChildren(QWidget)]
    for w in widgets:
        texts += [w.toolTip(), w.statusTip(), w.whatsThis(), w.windowTitle(), w.accessibleName()]
        for attribute in ("text", "placeholderText", "toPlainText", "currentText", "title"):
            value = getattr(w, attribute, None)
            if callable(value):
                try:
                    result = value()
                except TypeError:
                    continue
                if isinstance(result, str):
                    texts.append(result)
        if isinstance(w, QAbstractItemView) and w.model() is not None:
            model = w.model()
            for orientation in (Qt.Orientation.Horizontal, Qt.Orientation.Vertical):
                count = model.columnCount() if orientation == Qt.Orientation.Horizontal else None
                n = count if count is not None else model.rowCount()
                for i in range(n):
                    for role in ROLES:
                        texts.append(str(model.headerData(i, orientation, role) or ""))
            for r in range(model.rowCount()):
                for c in range(model.columnCount()):
                    index = model.index(r, c, QModelIndex())
                    for role in ROLES:
                        texts.append(str(model.data(index, role) or ""))
        for action in w.actions():
            texts += [action.text(), action.toolTip(), action.statusTip()]
    for action in window.findChildren(QAction):
        texts += [action.text(), action.toolTip(), action.statusTip()]
    case_view = getattr(window, "case_view", None)
    if case_view is not None:
        texts += case_view.all_text()
    return [t for t in texts if t]


def build_mini_demo(base: Path) -> dict[str, Any]:
    """The demo (its own code) on two patients' committed files, in ``base``."""
    samples = mini_demo_samples(base / "samples")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(base / "data"))
        env.setenv("SCORER_CONFIG", str(base / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        result = run_demo(str(base / "demo.sqlite"), samples=samples, say=lambda _t: None)
    allocation = result.accounts_file.with_name("demo-allocation.csv")
    return {
        "db": result.db,
        "passwords": result.passwords,
        "samples": samples,
        "base": base,
        "allocation": allocation,
    }
