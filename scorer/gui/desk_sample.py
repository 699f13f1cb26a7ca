"""A throw-away trial for the coordinator's desk preview (Qt-free): synthetic films of four
patients, two readers' signed reads with one discrepant patient, a third reader half-way,
an adjudicator, and a reader's flag."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore
from scorer.gui.sample_case import SAMPLE_READER, SAMPLE_READER_PASSWORD, build_sample_workspace

PASSWORD = "Harbour-Lantern-2024"


def graded(total: int) -> dict[Area, AreaScore]:
    """Every svh area 0 but the first ``total`` hand erosions graded 1 (status total = k)."""
    method = get_method("svh")
    out = {
        d.area: AreaScore.from_sides([0, 0]) if d.sides else AreaScore.scored(0)
        for d in method.areas
    }
    ero = [d.area for d in method.areas if d.feature == "ERO" and not d.sides]
    for a in ero[:total]:
        out[a] = AreaScore.scored(1)
    return out


def build_desk_sample(folder: str | os.PathLike[str]) -> tuple[Any, Any, str]:
    """(workspace, the coordinator's session, trial) of a trial part-way through reading."""
    sample = build_sample_workspace(Path(folder), patients=4, pixel_mm=1.0)
    ws, trial = sample.workspace, sample.trial
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    coord = ws.accounts.login("cora", "Willow-Compass-2024")
    sessions = {SAMPLE_READER: (sample.session, SAMPLE_READER_PASSWORD)}
    for name, full, role in (
        ("ravi", "Ravi Reader", "reader"),
        ("rosa", "Rosa Reader", "reader"),
        ("adam", "Adam Adjudicator", "adjudicator"),
    ):
        ws.accounts.add_user(admin, name, full, role, "Temporary-pass-0")
        s = ws.accounts.login(name, "Temporary-pass-0")
        ws.accounts.change_password(s, "Temporary-pass-0", PASSWORD)
        sessions[name] = (s, PASSWORD)
        if role == "reader":
            ws.worklists.assign_reader(coord, trial, name)
    ws.worklists.generate_worklists(coord, trial)
    # Changes W0 -> W52 per patient (real ID order) for rita and ravi: patient 3 discrepant.
    changes = {SAMPLE_READER: [0, 2, 1, 7], "ravi": [1, 2, 1, 1]}
    patients = {p.code: p.real_id for p in ws.trials.list_patients(coord, trial)}
    order = sorted(patients.values())
    for reader, per_patient in changes.items():
        s, pw = sessions[reader]
        for row in ws.worklists.worklist(coord, trial, reader):
            change = per_patient[order.index(patients[row.patient])]
            opened = ws.reading.open_case(s, row.code)
            for letter, label in zip("ABC", row.visits, strict=False):
                total = {"W0": 0, "W24": change // 2, "W52": change}[label]
                ws.reading.set_scores(s, opened.reads[letter], graded(total))
            ws.reading.sign_case(s, row.code, pw, username=None if s.signed_once else reader)
    rosa, pw = sessions["rosa"]
    first = ws.worklists.worklist(rosa, trial)[0].code
    opened = ws.reading.open_case(rosa, first)
    ws.reading.set_scores(rosa, opened.reads["A"], graded(1))
    films = ws.images.case_images(rosa, first)
    ws.reading.raise_flag(
        rosa,
        first,
        "Visit B may be another patient: the left hand looks different.",
        visit="B",
        films=[f.image for f in films["B"]],  # the films she had on screen
    )
    ws.trials.set_trial_setting(coord, trial, "adjudication_difference", 3.0, "protocol §8")
    ws.trials.set_trial_setting(coord, trial, "adjudication_trigger", "difference", "protocol §8")
    ws.adjudication.update_adjudication(coord, trial)
    return ws, coord, trial
