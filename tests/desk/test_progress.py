"""The desk's progress page over a trial part-way through reading: per reader, per case and per
patient, with the time per case summed from the reading window's case.closed events (and only
those: other events, events of cases of no trial, closings without seconds count nothing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from scorer.gui.desk_sample import PASSWORD, build_desk_sample
from scorer.workspace import InvalidInput, NotFound, PermissionDenied

ZERO_COUNTS = {
    "rereads": 0,
    "rereads_signed": 0,
    "calibration": 0,
    "calibration_signed": 0,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str, Any]]:
    """One trial for the module (the tests only add what progress does not show)."""
    folder = tmp_path_factory.mktemp("progress")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(folder / "data"))
        env.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        ws, coord, trial = build_desk_sample(folder / "trial")
        ws.adjudication.assign_adjudications(
            coord, trial, "adam"
        )  # the discrepant patient: adam's case
        codes = log_reading_time(ws, coord, trial)
        yield ws, coord, trial, codes
    ws.close()


def log_reading_time(ws: Any, coord: Any, trial: str) -> dict[str, list[str]]:
    """case.closed events for some of rita's and ravi's cases, with noise around them; returns
    each reader's case codes in worklist order."""
    codes = {
        r: [row.code for row in ws.worklists.worklist(coord, trial, r)] for r in ("rita", "ravi")
    }
    rita = ws.accounts.login("rita", "Tulip-Garden-2024")
    ravi = ws.accounts.login("ravi", PASSWORD)
    a, b, c, _ = codes["rita"]
    ws.reading.log_events(
        rita,
        [
            ("case.opened", a, None),
            ("image.viewed", "IMG1", {"seconds": 500.0, "case_code": a}),
            ("case.closed", a, {"seconds": 30.5}),
            ("case.closed", a, {"seconds": 12.0}),  # opened twice: the times add up
            ("case.closed", b, {"seconds": 40}),
            ("case.closed", c, {"seconds": 7.0}),
            ("case.closed", c, None),  # no seconds logged: counts nothing
        ],
        trial,
    )
    ws.reading.log_event(ravi, "case.closed", codes["ravi"][3], {"seconds": 100.25})
    ws.reading.log_event(ravi, "case.opened", codes["ravi"][0], None)
    return codes


def test_progress_shows_counts_times_and_patients(built: tuple[Any, Any, str, Any]) -> None:
    ws, coord, trial, codes = built
    out = ws.coordination.progress(coord, trial).to_dict()  # as `scorer progress` prints it
    assert out["trial"] == trial
    assert out["readers"] == [
        {
            "reader": "adam",
            "cases": 1,
            "signed": 0,
            "in progress": 0,
            "not started": 1,
            **ZERO_COUNTS,
            "adjudication": 1,
            "seconds": 0.0,
            "median_seconds_per_case": None,
        },
        {
            "reader": "ravi",
            "cases": 4,
            "signed": 4,
            "in progress": 0,
            "not started": 0,
            **ZERO_COUNTS,
            "adjudication": 0,
            "seconds": 100.2,
            "median_seconds_per_case": 100.2,
        },
        {
            "reader": "rita",
            "cases": 4,
            "signed": 4,
            "in progress": 0,
            "not started": 0,
            **ZERO_COUNTS,
            "adjudication": 0,
            "seconds": 89.5,
            "median_seconds_per_case": 40.0,
        },
        {
            "reader": "rosa",
            "cases": 4,
            "signed": 0,
            "in progress": 1,
            "not started": 3,
            **ZERO_COUNTS,
            "adjudication": 0,
            "seconds": 0.0,
            "median_seconds_per_case": None,
        },
    ]
    cases = out["cases"]
    # Campaign by campaign (adjudication's first), worklist by worklist, in worklist order.
    assert [(r["reader"], r["campaign"], r["read_type"]) for r in cases] == [
        ("adam", -1, "adjudication"),
        *[("rita", 1, "primary")] * 4,
        *[("ravi", 1, "primary")] * 4,
        *[("rosa", 1, "primary")] * 4,
    ]
    by_code = {r["case"]: r for r in cases}
    assert [by_code[c]["seconds"] for c in codes["rita"]] == [42.5, 40.0, 7.0, 0.0]
    assert [by_code[c]["seconds"] for c in codes["ravi"]] == [0.0, 0.0, 0.0, 100.2]
    assert [r["status"] for r in cases if r["reader"] == "rosa"] == ["in progress"] + [
        "not started"
    ] * 3
    patients = {p.code: p.real_id for p in ws.trials.list_patients(coord, trial)}
    worklist = {row.code: row.patient for row in ws.worklists.worklist(coord, trial, "rita")}
    assert all(by_code[c]["patient"] == worklist[c] for c in codes["rita"])
    assert len(out["patients"]) == 4
    assert [p["patient"] for p in out["patients"]] == sorted(patients)
    for p in out["patients"]:
        assert p["real_id"] == patients[p["patient"]]
        # Primary reads only: the adjudicator's case is not a patient's reader column.
        assert set(p["readers"]) == {"rita", "ravi", "rosa"}
        assert p["readers"]["rita"] == p["readers"]["ravi"] == "signed"
    assert sorted(p["readers"]["rosa"] for p in out["patients"]) == [
        "in progress",
        "not started",
        "not started",
        "not started",
    ]


def test_a_monitor_sees_no_patients(built: tuple[Any, Any, str, Any]) -> None:
    ws, coord, trial, _codes = built
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "mona", "Mona Monitor", "monitor", "Temporary-pass-0")
    monitor = ws.accounts.login("mona", "Temporary-pass-0")
    ws.accounts.change_password(monitor, "Temporary-pass-0", PASSWORD)
    seen = ws.coordination.progress(monitor, trial).to_dict()
    full = ws.coordination.progress(coord, trial).to_dict()
    assert "patients" not in seen
    assert all("patient" not in row for row in seen["cases"])
    assert seen["readers"] == full["readers"]
    assert seen["cases"] == [
        {k: v for k, v in row.items() if k != "patient"} for row in full["cases"]
    ]


def test_progress_does_not_read_the_whole_event_log(built: tuple[Any, Any, str, Any]) -> None:
    """A benchmark figure, printed (not asserted): progress with 50,000 events logged
    (run last in the module: the events stay)."""
    ws, coord, trial, _codes = built
    before = ws.coordination.progress(coord, trial)
    t0 = time.perf_counter()
    ws.coordination.progress(coord, trial)
    few = time.perf_counter() - t0
    rita = ws.accounts.login("rita", "Tulip-Garden-2024")
    for _ in range(10):
        film = ("image.viewed", "IMG1", {"seconds": 1.0, "case_code": _codes["rita"][0]})
        ws.reading.log_events(rita, [film] * 5000, trial)
    t0 = time.perf_counter()
    after = ws.coordination.progress(coord, trial)
    many = time.perf_counter() - t0
    assert after == before
    print(f"\nprogress: {few * 1000:.0f} ms with a few events, {many * 1000:.0f} ms with 50,000")


def test_an_event_about_a_case_not_ones_own_is_refused_and_changes_nothing(
    built: tuple[Any, Any, str, Any],
) -> None:
    """Time logged on a case counts in the coordinator's progress: a reader may log it only
    on their own cases, within a day, and no other role may log it at all."""
    ws, coord, trial, codes = built
    before = ws.coordination.progress(coord, trial)
    rita = ws.accounts.login("rita", "Tulip-Garden-2024")
    with pytest.raises(NotFound):
        ws.reading.log_event(rita, "case.closed", codes["ravi"][0], {"seconds": 360000 / 100})
    with pytest.raises(NotFound):
        ws.reading.log_event(rita, "case.closed", "NOSUCHCASE", {"seconds": 1.0})
    with pytest.raises(InvalidInput, match="0 to 86,400"):
        ws.reading.log_event(rita, "case.closed", codes["rita"][0], {"seconds": 360000})
    with pytest.raises(InvalidInput, match="names its case"):
        ws.reading.log_event(rita, "image.viewed", "IMG1", {"seconds": 1.0})
    with pytest.raises(InvalidInput, match="subject"):
        ws.reading.log_event(rita, "case.closed", "\u202e" + "x" * 50_000, {"seconds": 1.0})
    with pytest.raises(PermissionDenied):
        ws.reading.log_event(coord, "case.closed", codes["rita"][0], {"seconds": 1.0})
    assert ws.coordination.progress(coord, trial) == before
