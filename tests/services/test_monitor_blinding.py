"""A monitor sees case codes, never a patient or an image (README, the monitor's window):
found by an outsider, the demo coordinator's session timeline showed each patient's code
(``patient.add``) and each image's code (``image.import``), and so did the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest

from scorer.demo import TRIAL
from tests.services.small_demo import small_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from small_demo(tmp_path_factory.mktemp("monitor-blind"))


def _secrets(demo: dict[str, Any]) -> set[str]:
    ws = demo["ws"]
    coord = ws.accounts.login("coord", demo["pw"]["coord"])
    patients = ws.trials.list_patients(coord, TRIAL)
    images = ws.images.list_images(coord, TRIAL)
    found = {p.code for p in patients} | {p.real_id for p in patients}
    found |= {i.code for i in images}
    found |= {i.acquisition_date for i in images if i.acquisition_date}
    return found


def test_a_monitor_sees_no_patient_or_image_in_timelines_or_the_trail(
    demo: dict[str, Any],
) -> None:
    ws = demo["ws"]
    secrets = _secrets(demo)
    assert len(secrets) > 10
    monitor = ws.accounts.login("monitor", demo["pw"]["monitor"])
    shown: list[str] = []
    sessions = ws.oversight.reading_sessions(monitor)
    assert sessions
    for s in sessions:
        shown.append(json.dumps(asdict(s)))
        shown += [json.dumps(asdict(r)) for r in ws.oversight.session_timeline(monitor, s.session)]
    trail = ws.oversight.audit_trail(monitor)
    shown += [json.dumps(asdict(a)) for a in trail]
    text = "\n".join(shown)
    leaked = sorted(x for x in secrets if x in text)
    assert not leaked, leaked[:5]
    # The rows are still there, saying what kind of thing they are about.
    adds = [a for a in trail if a.action == "patient.add"]
    assert adds and {a.entity_id for a in adds} == {"(a patient)"}
    imports = [a for a in trail if a.action == "image.import"]
    assert imports and {a.entity_id for a in imports} == {"(an image)"}
    # The coordinator still sees them.
    coord = ws.accounts.login("coord", demo["pw"]["coord"])
    assert any(a.entity_id in secrets for a in ws.oversight.audit_trail(coord))
