"""Text the facade stores: names of at most 200 characters and free text of at most 10,000,
no control characters or bidi overrides in names, and letters of every script accepted."""

from __future__ import annotations

import re

import pytest

from scorer.workspace import MAX_NAME, MAX_TEXT, InvalidInput
from tests.desk.conftest import Desk

NAMES = ["محمد الأحمد", "Zoë Ångström-Łukasiewicz", "李小龍", "Пётр Ильич", "שרה כהן", "Nguyễn Thị"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


def test_names_in_any_script_are_accepted(desk: Desk) -> None:
    for i, name in enumerate(NAMES):
        desk.ws.accounts.add_user(desk.admin, f"u{i}", name, "reader", "Temporary-pass-0")
        desk.ws.trials.create_trial(desk.coord, f"T{i}", name)
        desk.ws.trials.add_patient(desk.coord, f"T{i}", name)
        assert [p.real_id for p in desk.ws.trials.list_patients(desk.coord, f"T{i}")] == [name]
    users = {u.username: u.full_name for u in desk.ws.accounts.list_users(desk.admin)}
    assert [users[f"u{i}"] for i in range(len(NAMES))] == NAMES
    assert [t.name for t in desk.ws.trials.list_trials(desk.coord)] == NAMES


def test_names_have_a_length_limit(desk: Desk) -> None:
    desk.ws.accounts.add_user(desk.admin, "u1", "x" * MAX_NAME, "reader", "Temporary-pass-0")
    with pytest.raises(InvalidInput, match="printed name is 201 characters long; at most 200"):
        desk.ws.accounts.add_user(desk.admin, "u2", "x" * 201, "reader", "Temporary-pass-0")
    with pytest.raises(InvalidInput, match="trial name is 100,000 characters long; at most 200"):
        desk.ws.trials.create_trial(desk.coord, "T1", "x" * 100_000)
    desk.ws.trials.create_trial(desk.coord, "T1")
    with pytest.raises(InvalidInput, match="patient identifier is 201 characters"):
        desk.ws.trials.add_patient(desk.coord, "T1", "P" * 201)
    assert desk.ws.trials.list_patients(desk.coord, "T1") == []


BAD_NAMES = [
    ("a\x00b", "a control character (U+0000) at position 2"),
    ("a\x1b[31mred", "a control character (U+001B) at position 2"),
    ("tab\there", "a control character (U+0009) at position 4"),
    ("line\nbreak", "a control character (U+000A)"),
    ("c1\x85", "a control character (U+0085) at position 3"),
    ("del\x7f", "a control character (U+007F)"),
    ("x\udcff", "bytes that are not UTF-8 text at position 2"),
    *[(f"evil{c}txt.exe", f"a bidirectional override or isolate (U+{ord(c):04X})") for c in BIDI],
]


def test_names_refuse_control_and_bidi_characters(desk: Desk) -> None:
    desk.ws.trials.create_trial(desk.coord, "T2")
    for bad, what in BAD_NAMES:
        with pytest.raises(InvalidInput, match=re.escape(f"the printed name contains {what}")):
            desk.ws.accounts.add_user(desk.admin, "u1", bad, "reader", "Temporary-pass-0")
        with pytest.raises(InvalidInput, match=re.escape(f"the trial name contains {what}")):
            desk.ws.trials.create_trial(desk.coord, "T1", bad)
        with pytest.raises(InvalidInput, match="the patient identifier contains"):
            desk.ws.trials.add_patient(desk.coord, "T2", bad)
    assert [u.username for u in desk.ws.accounts.list_users(desk.admin)] == ["ada", "cora"]
    assert [t.code for t in desk.ws.trials.list_trials(desk.coord)] == ["T2"]
    assert desk.ws.trials.list_patients(desk.coord, "T2") == []


def test_free_text_has_a_limit_and_keeps_line_breaks_and_bidi(desk: Desk) -> None:
    desk.user("u1", "reader")
    desk.user("u2", "reader")
    with pytest.raises(InvalidInput, match="the reason is 10,001 characters long; at most 10,000"):
        desk.ws.accounts.disable_user(desk.admin, "u1", "r" * (MAX_TEXT + 1))
    with pytest.raises(InvalidInput, match=r"the reason contains a control character \(U\+001B\)"):
        desk.ws.accounts.disable_user(desk.admin, "u1", "left\x1b[2J")
    with pytest.raises(InvalidInput, match=r"the reason contains a control character \(U\+0085\)"):
        desk.ws.accounts.disable_user(desk.admin, "u1", "left\x85")
    assert not any(u.disabled for u in desk.ws.accounts.list_users(desk.admin))
    # a reason of several lines, tabs, and Arabic with direction marks around a Latin word is
    # prose
    desk.ws.accounts.disable_user(desk.admin, "u1", "left the trial\n\tsee the memo " + "r" * 9_000)
    desk.ws.accounts.disable_user(desk.admin, "u2", "غادر \u200etrial T1\u200f اليوم\u061c")
    assert all(u.disabled for u in desk.ws.accounts.list_users(desk.admin) if u.username[0] == "u")


def test_free_text_refuses_bidi_embeddings_overrides_and_isolates(desk: Desk) -> None:
    """They would make a reason, a note or an answer read as other text in every export
    ("abc\u202eevil" shows as "abclive"); the direction marks stay allowed."""
    desk.ws.trials.create_trial(desk.coord, "T-R")
    desk.user("u1", "reader")
    for c in BIDI:
        said = (
            "the reason contains a bidirectional override or isolate "
            f"(U+{ord(c):04X}) at position 4"
        )
        with pytest.raises(InvalidInput, match=re.escape(said)):
            desk.ws.trials.set_trial_setting(desk.coord, "T-R", "reread_share", 0.2, f"abc{c}evil")
        with pytest.raises(InvalidInput, match=re.escape(said)):
            desk.ws.accounts.disable_user(desk.admin, "u1", f"abc{c}evil")
    assert not any(u.disabled for u in desk.ws.accounts.list_users(desk.admin))
    desk.ws.trials.set_trial_setting(desk.coord, "T-R", "reread_share", 0.2, "abc\u200fevil")


INVISIBLE_NAMES = [
    ("\u200b", "an invisible character (U+200B) at position 1"),
    ("Ada\u200cLovelace", "an invisible character (U+200C) at position 4"),
    ("Ada\u200d", "an invisible character (U+200D) at position 4"),
    ("\u2060Ada", "an invisible character (U+2060) at position 1"),
    ("\ufeff", "an invisible character (U+FEFF) at position 1"),
    ("\u115f", "an invisible character (U+115F) at position 1"),
    ("\u3164", "an invisible character (U+3164) at position 1"),
    ("\u2800", "an invisible character (U+2800) at position 1"),
    ("Trial\u2028one", "a line separator (U+2028) at position 6"),
    ("Trial\u2029", "a line separator (U+2029) at position 6"),
]
NO_LETTER = ["\u0301\u0308", "---", "\u200e\u00b7", "(\u3000)"]


def test_a_name_must_print_as_something(desk: Desk) -> None:
    """A printed name, a trial's name, a patient identifier: no invisible character, no line
    separator, and at least one letter or digit (combining marks, spaces or punctuation
    alone print as nothing a person can read)."""
    desk.ws.trials.create_trial(desk.coord, "T2")
    for bad, what in INVISIBLE_NAMES:
        with pytest.raises(InvalidInput, match=re.escape(f"the printed name contains {what}")):
            desk.ws.accounts.add_user(desk.admin, "inv0x", bad, "reader", "Temporary-pass-0")
        with pytest.raises(InvalidInput, match=re.escape(f"the trial name contains {what}")):
            desk.ws.trials.create_trial(desk.coord, "T1", bad)
    for bad in NO_LETTER:
        with pytest.raises(InvalidInput, match="the printed name has no letter or digit"):
            desk.ws.accounts.add_user(desk.admin, "inv0x", bad, "reader", "Temporary-pass-0")
        with pytest.raises(InvalidInput, match="the trial name has no letter or digit"):
            desk.ws.trials.create_trial(desk.coord, "T1", bad)
        with pytest.raises(InvalidInput, match="the patient identifier has no letter or digit"):
            desk.ws.trials.add_patient(desk.coord, "T2", bad)
    assert [u.username for u in desk.ws.accounts.list_users(desk.admin)] == ["ada", "cora"]
    assert [t.code for t in desk.ws.trials.list_trials(desk.coord)] == ["T2"]
    assert desk.ws.trials.list_patients(desk.coord, "T2") == []
    desk.ws.accounts.add_user(desk.admin, "u7", "\u200fשרה כהן", "reader", "Temporary-pass-0")
    desk.ws.accounts.add_user(desk.admin, "u8", "7", "reader", "Temporary-pass-0")
    # the zero-width non-joiner is part of Persian spelling (Alireza), between two letters
    desk.ws.accounts.add_user(desk.admin, "u9", "علی‌رضا", "reader", "Temporary-pass-0")
    with pytest.raises(InvalidInput, match=re.escape("(U+200C) at position 1")):
        desk.ws.accounts.add_user(desk.admin, "u10", "‌علی", "reader", "Temporary-pass-0")


def test_a_code_names_the_character_it_may_not_hold(desk: Desk) -> None:
    """Letters of any script are fine in a code; the first character that is none of the
    allowed ones is named with its position."""
    desk.ws.trials.create_trial(desk.coord, "محمد")
    with pytest.raises(InvalidInput) as info:
        desk.ws.trials.create_trial(desk.coord, "محمد الأحمد")
    assert str(info.value) == (
        "a trial code is 1-64 letters, digits, dots, dashes or underscores; a space (U+0020) "
        "at position 5 is none of these"
    )
    with pytest.raises(InvalidInput, match=r"user ID .*; '/' \(U\+002F\) at position 2"):
        desk.ws.accounts.add_user(desk.admin, "a/b", "Ada", "reader", "Temporary-pass-0")
    with pytest.raises(InvalidInput, match="; it is empty"):
        desk.ws.trials.create_trial(desk.coord, "")
