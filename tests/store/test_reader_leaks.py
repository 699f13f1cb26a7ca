"""What a reader can obtain from the facade, walked operation by operation (issue 12, part):
every value returned and every error message, to the reader's own requests and to requests
for other readers' reads and cases, and the log output, searched for real identifiers, patient
codes, visit labels, read types and other readers' names and reads."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import pytest

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import ScorerError
from tests.store import test_roles as roles
from tests.store.conftest import POPULATED_REAL_IDS

SVH = get_method("svh")
FIRST = SVH.areas[0].area


def _text(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return repr(value)


def test_a_reader_obtains_nothing_that_unblinds(
    populated_copy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = populated_copy
    ws, s = c.ws, c.session("reader1")
    mine = c.template.reads["reader1"]
    theirs = {
        **{f"r2-{k}": v for k, v in c.template.reads["reader2"].items()},
        **{f"a-{k}": v for k, v in c.template.reads["adjud1"].items()},
    }
    case = c.cases("reader1")[0]
    seen: list[str] = []

    def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            out = fn(*args, **kwargs)
        except ScorerError as exc:
            seen.append(f"{type(exc).__name__}: {exc}")
            return None
        seen.append(_text(out))
        return out

    # Everything the reader may do, on their own data.
    call(ws.trials.list_trials, s)
    call(ws.worklists.reading_trials, s)
    call(ws.worklists.worklist, s, "T1")
    opened = call(ws.reading.open_case, s, case)
    call(ws.images.case_images, s, case)
    call(ws.worklists.my_reads, s, "T1")
    for code in mine.values():
        call(ws.reading.get_read, s, code)
    for code in (opened.reads if opened is not None else {}).values():
        call(ws.reading.set_score, s, code, FIRST, AreaScore.scored(2))
        call(ws.reading.set_scores, s, code, {FIRST: AreaScore.scored(7)})  # out of range: refused
        call(ws.reading.clear_score, s, code, FIRST)
        call(ws.reading.set_note, s, code, "blurred")
        call(ws.reading.sign_read, s, code, c.password("reader1"), username="reader1")  # incomplete
    call(ws.reading.sign_case, s, case, "wrong-password-000", username="reader1")
    call(ws.reading.reopen_case, s, case, "no reason to")
    call(ws.reading.raise_flag, s, case, "visit B may be another patient")
    call(ws.coordination.flags, s, "T1")
    call(ws.calibration.calibration_feedback, s, case)
    # Reaching for other readers' reads and cases, and for nonexistent ones.
    for code in [*theirs.values(), "NOSUCHREAD99"]:
        call(ws.reading.get_read, s, code)
        call(ws.reading.set_score, s, code, FIRST, AreaScore.scored(1))
        call(ws.reading.clear_score, s, code, FIRST)
        call(ws.reading.set_note, s, code, "x")
        call(ws.reading.reopen_read, s, code, "x")
    for code in ("NOSUCHCASE1",):
        call(ws.reading.open_case, s, code)
        call(ws.images.case_images, s, code)
        call(ws.reading.raise_flag, s, code, "x")
        call(ws.reading.sign_case, s, code, c.password("reader1"), username="reader1")
    call(ws.worklists.worklist, s, "T1", reader="reader2")
    # Everything the reader may not do: the refusals.
    for op in sorted(roles.ALLOWED):
        if "reader" in roles.ALLOWED[op]:
            continue
        try:
            roles.CALLS[op](c, s)
        except ScorerError as exc:
            seen.append(f"{type(exc).__name__}: {exc}")
    seen += [r.getMessage() for r in caplog.records]
    assert len(seen) > 80

    secrets = set(POPULATED_REAL_IDS) | set(c.patients.values()) | set(theirs.values())
    secrets |= {"reader2", "adjud1", "Reader Two", c.full_name("reader2"), c.full_name("adjud1")}
    words = re.compile(r"\b(W0|W24|adjudication|reread|re-read|primary)\b")
    for text in seen:
        for secret in secrets:
            assert secret not in text, (secret, text)
        assert not words.search(text), text
