"""Reading: a reader's reads and scores, notes, signatures, opened cases and the time spent on
them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from scorer.core.joints import JointPoint
from scorer.core.json_value import JsonValue
from scorer.core.methods import Area, get_method
from scorer.core.reads import READ_TYPES, AreaScore, ReadError, check_score
from scorer.core.worklist import LETTERS
from scorer.services.coordination import raise_case_flag
from scorer.services.errors import AuthError, Conflict, InvalidInput, NotFound, PermissionDenied
from scorer.services.joint_positions import place_on_case_film
from scorer.services.lookups import (
    case_reads,
    case_status,
    find_trial,
    must_calibrate,
    own_case,
    own_case_of_visit,
    own_read,
    refuse_if_locked,
)
from scorer.services.operation import Op, Service, check_account, operation
from scorer.services.read_views import (
    OpenedCase,
    ReadView,
    ScoreAck,
    content_hash,
    score_json,
    shown,
)
from scorer.services.session import UserSession
from scorer.services.validation import check_code, check_text, need_reason
from scorer.store import repository as repo
from scorer.store.database import Session, Tx
from scorer.store.schema import (
    Patient,
)

MISSING_TEXT = "no image of this region"


MEANINGS = ("authored", "reviewed", "approved")
#: The longest time an event may record on a case or a film: a day.
MAX_EVENT_SECONDS = 86_400
#: The largest magnification an ``image.viewed`` event may report (the viewer's own limit is
#: far below it; this only keeps nonsense out of the event log).
MAX_ZOOM = 1_000

#: The roles that enter scores and sign reads.
SCORERS = ("reader", "adjudicator")


class ReadingService(Service):
    """A reader's (or adjudicator's) work on their own cases: scores, notes, signatures, events,
    flags."""

    @operation("reader", "adjudicator", write=True, scoped=True)
    def start_read(
        self,
        op: Op,
        trial: str,
        patient_code: str,
        visit: str,
        method: str = "svh",
        read_type: str = "primary",
    ) -> str:
        """Open a new read of a patient at a visit for the calling reader; returns its code.
        Only of a visit of one of the caller's own worklist cases of that read type: any other
        is "no such case", as for a patient or visit that does not exist. (An adjudicator's
        adjudication read is not limited to the patients given to them yet.)"""
        if read_type not in READ_TYPES or read_type == "imported":
            raise InvalidInput(f"a reader cannot start a {read_type!r} read")
        if read_type == "adjudication" and op.user.role != "adjudicator":
            raise PermissionDenied("only an adjudicator starts adjudication reads")
        db = op.db
        t = find_trial(db, trial)
        refuse_if_locked(t)
        if method not in t.methods.split(","):
            raise InvalidInput(f"trial {trial} is not scored with {method}")
        p = repo.patient_by_code(db, t, patient_code)
        v = repo.visit_by_label(db, t, visit)
        # Whether the patient code or the visit exists is not told to someone without a case
        # of them: the very same answer.
        c = None
        if p is not None and v is not None:
            c = own_case_of_visit(op.user, db, t, p, visit, read_type)
        if p is None or v is None or (c is None and read_type != "adjudication"):
            raise NotFound("no such case in this trial")
        if c is not None:
            must_calibrate(db, t, op.user, c)
        existing = repo.find_read(db, t, p, v, op.user.user_id, method, read_type)
        if existing is not None and existing.status != "void":
            return str(existing.code)
        r = repo.add_read(
            db, t, p, v, op.user.user_id, method, read_type, repo.unique_read_code(db), op.now
        )
        op.tx.audit(
            "read.start",
            "read",
            r.code,
            trial_id=t.id,
            new={"method": method, "read_type": read_type},
        )
        return str(r.code)

    @operation()
    def get_read(self, op: Op, code: str) -> ReadView:
        """A read with its scores. Readers get it blinded: no patient code, visit label or
        read type (a re-read must look like any other read)."""
        r = own_read(op.user, op.db, code, write=False)
        view: ReadView = repo.read_view(op.db, r, ReadView)
        if op.user.role == "reader":
            view = replace(view, patient_code="", visit="", read_type="")
        return view

    @operation("reader", "adjudicator", write=True, scoped=True)
    def set_score(
        self,
        op: Op,
        code: str,
        area: Area,
        value: AreaScore,
        reason_text: str = "",
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> ScoreAck:
        """Save one area's score (or not-assessable reason) in its own transaction.

        Changing a signed read needs ``change_reason``: the signature is voided and the read
        must be signed again. ``expected_version`` / ``expected``: see :meth:`set_scores`.
        """
        return self._set_scores(
            op,
            code,
            {area: value},
            {area: reason_text} if reason_text else None,
            change_reason,
            expected_version,
            expected,
        )[0]

    @operation("reader", "adjudicator", write=True, scoped=True)
    def set_scores(
        self,
        op: Op,
        code: str,
        values: Mapping[Area, AreaScore],
        reason_texts: Mapping[Area, str] | None = None,
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> list[ScoreAck]:
        """Save several areas of one read in one transaction, each change audited on its own
        row (used for "rest of this region = 0" and for bulk entry); all or nothing.

        No lost update between workstations: with ``expected_version`` the read must be at
        that version; with ``expected`` each named area must still hold what the caller last
        saw (``None``: not entered). Otherwise :class:`Conflict` with the current values."""
        return self._set_scores(
            op, code, values, reason_texts, change_reason, expected_version, expected
        )

    def _set_scores(
        self,
        op: Op,
        code: str,
        values: Mapping[Area, AreaScore],
        reason_texts: Mapping[Area, str] | None,
        change_reason: str,
        expected_version: int | None,
        expected: Mapping[Area, AreaScore | None] | None,
    ) -> list[ScoreAck]:
        """Save areas of one read in the operation's transaction (set_score, set_scores)."""
        check_text(change_reason, "reason")  # stored in the audit row, signed read or not
        texts = reason_texts or {}
        acks: list[ScoreAck] = []
        tx = op.tx
        r = own_read(op.user, tx.session, code, write=True)
        t = repo.trial_by_id(tx.session, r.trial_id)
        refuse_if_locked(t)
        method = get_method(r.method)
        for area, value in values.items():
            try:
                check_score(method, area, value)
            except ReadError as exc:
                raise InvalidInput(str(exc)) from exc
            if value.reason == "other" and not texts.get(area, "").strip():
                raise InvalidInput(f"{area}: describe the reason 'other'")
            check_text(texts.get(area, ""), f"description of {area}")
        if expected_version is not None and r.version != expected_version:
            raise self._stale(tx, r, list(values), expected_version)
        if expected:
            self._check_expected(tx, r, {a: expected[a] for a in values if a in expected})
        if r.status == "void":
            raise InvalidInput("this read is void")
        for area, value in values.items():
            reason_text = texts.get(area, "")
            row = repo.score_row(tx.session, r, area)
            old = None if row is None else score_json(repo.row_score(row), row.reason_text)
            new = score_json(value, reason_text)
            if old == new:
                acks.append(ScoreAck(code, area, r.version, r.status))
                continue
            if r.status == "signed":
                if not change_reason.strip():
                    raise InvalidInput(
                        "this read is signed: give a reason to change it (the signature is "
                        "voided and the read must be signed again)"
                    )
                self._void_signature(tx, op.user, r, change_reason)
            repo.put_score(tx.session, r, area, value, reason_text, method.order(area), tx.now)
            r.updated_at = tx.now
            tx.session.flush()
            tx.audit(
                "score.set",
                "read",
                r.code,
                trial_id=r.trial_id,
                old={"area": str(area), **(old or {})} if old else {"area": str(area)},
                new={"area": str(area), **(new or {})},
                reason=change_reason,
            )
            acks.append(ScoreAck(code, area, r.version, r.status))
        return acks

    def _check_expected(self, tx: Tx, r: Any, expected: Mapping[Area, AreaScore | None]) -> None:
        """Raise Conflict if an area no longer holds what the caller saw."""
        changed: dict[Area, AreaScore | None] = {}
        for area, seen in expected.items():
            row = repo.score_row(tx.session, r, area)
            now = repo.row_score(row) if row is not None else None
            if score_json(now) != score_json(seen):
                changed[area] = now
        if changed:
            words = "; ".join(f"{a} is now {shown(v)}" for a, v in changed.items())
            raise Conflict(
                f"changed on another workstation: {words}. Nothing was saved; check the value "
                "and enter it again (Retry keeps yours).",
                r.version,
                changed,
            )

    def _stale(self, tx: Tx, r: Any, areas: Sequence[Area], expected: int) -> Conflict:
        """The conflict of a change made on a stale copy of read ``r``, with the current
        value of each area it would have changed."""
        now = []
        for area in areas:
            row = repo.score_row(tx.session, r, area)
            now.append(f"{area} is now {shown(repo.row_score(row) if row else None)}")
        return Conflict(
            "this read was changed on another workstation since you had it (version "
            f"{r.version}, yours {expected}): {'; '.join(now)}. Nothing was saved; check the "
            "value and enter it again.",
            r.version,
        )

    @operation("reader", "adjudicator", write=True, scoped=True)
    def clear_score(
        self,
        op: Op,
        code: str,
        area: Area,
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> ScoreAck:
        """Remove an area's entry (undo of a first entry); ``expected`` as for set_scores."""
        return self._clear_scores(op, code, [area], change_reason, expected_version, expected)[0]

    @operation("reader", "adjudicator", write=True, scoped=True)
    def clear_scores(
        self,
        op: Op,
        code: str,
        areas: Sequence[Area],
        change_reason: str = "",
        expected_version: int | None = None,
        expected: Mapping[Area, AreaScore | None] | None = None,
    ) -> list[ScoreAck]:
        """Remove several areas' entries of one read in one transaction, each removal audited
        on its own row (the undo of "rest of this region = 0"); all or nothing.

        ``expected_version`` / ``expected``: see :meth:`set_scores`."""
        return self._clear_scores(op, code, areas, change_reason, expected_version, expected)

    def _clear_scores(
        self,
        op: Op,
        code: str,
        areas: Sequence[Area],
        change_reason: str,
        expected_version: int | None,
        expected: Mapping[Area, AreaScore | None] | None,
    ) -> list[ScoreAck]:
        """Remove areas' entries of one read in the operation's transaction (clear_score,
        clear_scores)."""
        check_text(change_reason, "reason")  # stored in the audit row, signed read or not
        areas = list(dict.fromkeys(areas))
        acks: list[ScoreAck] = []
        tx = op.tx
        r = own_read(op.user, tx.session, code, write=True)
        refuse_if_locked(repo.trial_by_id(tx.session, r.trial_id))
        if expected_version is not None and r.version != expected_version:
            raise self._stale(tx, r, areas, expected_version)
        if expected:
            self._check_expected(tx, r, {a: expected[a] for a in areas if a in expected})
        if r.status == "signed":
            if not change_reason.strip():
                raise InvalidInput("this read is signed: give a reason to change it")
            self._void_signature(tx, op.user, r, change_reason)
        for area in areas:
            row = repo.score_row(tx.session, r, area)
            if row is None:
                acks.append(ScoreAck(code, area, r.version, r.status))
                continue
            old = score_json(repo.row_score(row), row.reason_text)
            tx.session.delete(row)
            r.updated_at = tx.now
            tx.session.flush()
            tx.audit(
                "score.clear",
                "read",
                r.code,
                trial_id=r.trial_id,
                old={"area": str(area), **(old or {})},
                reason=change_reason,
            )
            acks.append(ScoreAck(code, area, r.version, r.status))
        return acks

    @operation("reader", "adjudicator", write=True, scoped=True)
    def set_note(self, op: Op, code: str, note: str) -> int:
        """Set the read's note; returns the read's new version."""
        check_text(note, "note")
        tx = op.tx
        r = own_read(op.user, tx.session, code, write=True)
        refuse_if_locked(repo.trial_by_id(tx.session, r.trial_id))
        if r.status == "signed":
            raise InvalidInput("this read is signed: reopen it with a reason first")
        tx.audit("read.note", "read", r.code, trial_id=r.trial_id, old=r.note, new=note)
        r.note = note
        r.updated_at = tx.now
        tx.session.flush()
        return int(r.version)

    @operation("reader", "adjudicator", write=True, transaction=False, scoped=True)
    def sign_read(
        self,
        op: Op,
        code: str,
        password: str,
        username: str | None = None,
        meaning: str = "authored",
    ) -> str:
        """Sign a complete read (Part 11): user ID and password at the session's first
        signature, the password after that. Returns the signed content's hash."""
        # Not the operation's transaction: a wrong password counts towards the lockout, and
        # that count (audited) must commit before AuthError is raised; _signing opens the
        # write transaction and checks the account again inside it.
        if meaning not in MEANINGS:
            raise InvalidInput(f"unknown signature meaning {meaning!r}")
        self._check_signer(op.user, username)
        digest = ""
        with self._signing(op) as tx:
            user = repo.user_by_id(tx.session, op.user.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                r = own_read(op.user, tx.session, code, write=True)
                refuse_if_locked(repo.trial_by_id(tx.session, r.trial_id))
                if r.status == "signed":
                    raise InvalidInput("this read is signed already")
                view = repo.read_view(tx.session, r, ReadView)
                missing = [a.area for a in get_method(r.method).areas if a.area not in view.scores]
                if missing:
                    raise InvalidInput(
                        f"{len(missing)} area(s) are neither scored nor marked not assessable "
                        f"(first: {missing[0]})"
                    )
                digest = self._sign_in_tx(tx, user, r, meaning)
        if failure:
            raise AuthError(failure)
        op.user.signed_once = True
        return digest

    @contextmanager
    def _signing(self, op: Op) -> Iterator[Tx]:
        """The write transaction of a signature, the account and role checked again in it (a
        signature commits a wrong password's count before refusing: see sign_read)."""
        with self._ctx.write(op.user.username, op.user.id) as tx:
            check_account(tx.session, op.user, SCORERS, False, op.user.last_active)
            yield tx

    def _void_signature(self, tx: Tx, s: UserSession, r: Any, reason: str) -> None:
        check_text(reason, "reason")
        user = repo.user_by_id(tx.session, s.user_id)
        sig = repo.add_signature(
            tx.session,
            "read",
            r.code,
            "void",
            user,
            "authored",
            tx.now,
            repo.last_signature(tx.session, r.code).content_hash,
            reason,
        )
        r.status = "in_progress"
        tx.session.flush()
        tx.audit(
            "read.void_signature",
            "read",
            r.code,
            trial_id=r.trial_id,
            old={"status": "signed"},
            new={"status": "in_progress", "signature": sig.id},
            reason=reason,
        )

    @operation("reader", "adjudicator", write=True, scoped=True)
    def reopen_read(self, op: Op, code: str, reason: str) -> None:
        """Reopen a signed read for changes: the signature is voided, with the reason."""
        need_reason(reason)
        tx = op.tx
        r = own_read(op.user, tx.session, code, write=True)
        refuse_if_locked(repo.trial_by_id(tx.session, r.trial_id))
        if r.status != "signed":
            raise InvalidInput("only a signed read is reopened")
        self._void_signature(tx, op.user, r, reason)

    @operation("reader", "adjudicator", write=True, transaction=False, scoped=True)
    def sign_case(
        self,
        op: Op,
        case_code: str,
        password: str,
        username: str | None = None,
        meaning: str = "authored",
    ) -> list[str]:
        """Sign every read of one of the reader's cases together (spec §8: a patient's reads
        for a reader are signed as one case), in one transaction: all or none. Each read gets
        its own signature and audit row. Returns the signed contents' hashes, visit by visit."""
        # Not the operation's transaction, as for sign_read: a wrong password's count commits.
        if meaning not in MEANINGS:
            raise InvalidInput(f"unknown signature meaning {meaning!r}")
        self._check_signer(op.user, username)
        failure = ""
        digests: list[str] = []
        with self._signing(op) as tx:
            user = repo.user_by_id(tx.session, op.user.user_id)
            failure = self._signature_refusal(tx, user, password)
            if not failure:
                c, _, t = own_case(op.user, tx.session, case_code)
                refuse_if_locked(t)
                reads = case_reads(tx.session, c, t)
                if not reads:
                    raise InvalidInput("this case has not been opened yet")
                if all(r.status == "signed" for _, r in reads):
                    raise InvalidInput("this case is signed already")
                problems = []
                for letter, r in reads:
                    view = repo.read_view(tx.session, r, ReadView)
                    left = [a.area for a in get_method(r.method).areas if a.area not in view.scores]
                    if left:
                        problems.append(f"visit {letter}: {len(left)} (first: {left[0]})")
                if problems:
                    raise InvalidInput(
                        "areas neither scored nor marked not assessable: " + "; ".join(problems)
                    )
                for _, r in reads:
                    if r.status != "signed":
                        digests.append(self._sign_in_tx(tx, user, r, meaning, case=c.code))
                tx.event("case.signed", case_code, {"reads": len(digests)}, op.user.id, t.id)
        if failure:
            raise AuthError(failure)
        op.user.signed_once = True
        return digests

    @operation("reader", "adjudicator", write=True, scoped=True)
    def reopen_case(self, op: Op, case_code: str, reason: str) -> None:
        """Reopen a signed case for changes: every read's signature is voided, with the
        reason; the case must be signed again."""
        need_reason(reason)
        tx = op.tx
        c, _, t = own_case(op.user, tx.session, case_code)
        refuse_if_locked(t)
        signed = [r for _, r in case_reads(tx.session, c, t) if r.status == "signed"]
        if not signed:
            raise InvalidInput("only a signed case is reopened")
        for r in signed:
            self._void_signature(tx, op.user, r, reason)

    def _sign_in_tx(self, tx: Tx, user: Any, r: Any, meaning: str, case: str = "") -> str:
        view = repo.read_view(tx.session, r, ReadView)
        digest = content_hash(view)
        sig = repo.add_signature(
            tx.session, "read", r.code, "sign", user, meaning, tx.now, digest, ""
        )
        old_status = r.status
        r.status = "signed"
        r.updated_at = tx.now
        tx.session.flush()
        new: dict[str, Any] = {
            "status": "signed",
            "signature": sig.id,
            "meaning": meaning,
            "printed_name": user.full_name,
            "content_hash": digest,
            "signed_at": tx.now,
        }
        if case:
            new["case"] = case
        tx.audit(
            "read.sign", "read", r.code, trial_id=r.trial_id, old={"status": old_status}, new=new
        )
        return digest

    @operation("reader", "adjudicator", write=True, scoped=True)
    def open_case(self, op: Op, case_code: str, method: str | None = None) -> OpenedCase:
        """Open one of the reader's cases: its visits as letters A, B, C with their read codes
        (reads are started on first opening). Nothing else about the visits is returned."""
        tx = op.tx
        c, _, t = own_case(op.user, tx.session, case_code)
        must_calibrate(tx.session, t, op.user, c)
        methods = t.methods.split(",")
        method = method or methods[0]
        if method not in methods:
            raise InvalidInput(f"this trial is not scored with {method}")
        p = tx.session.get(Patient, c.patient_id)
        assert p is not None, "a case's patient is a foreign key"
        existing = {
            (r.visit_id, r.method): r
            for r in repo.reads_of_case(tx.session, c)
            if r.status != "void"
        }
        letters: dict[str, str] = {}
        for i, label in enumerate(json.loads(c.visits)):
            v = repo.visit_by_label(tx.session, t, label)
            assert v is not None, "a case's visits are the trial's"
            r = existing.get((v.id, method))
            if r is None:
                r = self._start_case_read(op, c, t, p, v, method)
            letters[LETTERS[i]] = r.code
        tx.event("case.opened", c.code, None, op.user.id, t.id)
        return OpenedCase(c.code, letters, method, case_status(tx.session, c))

    def _start_case_read(self, op: Op, c: Any, t: Any, p: Patient, v: Any, method: str) -> Any:
        """Start the reader's read of a case's visit (audited), its regions without image
        marked not assessable."""
        tx = op.tx
        refuse_if_locked(t)
        r = repo.add_read(
            tx.session,
            t,
            p,
            v,
            op.user.user_id,
            method,
            c.read_type,
            repo.unique_read_code(tx.session),
            tx.now,
        )
        r.case_id = c.id
        tx.audit(
            "read.start",
            "read",
            r.code,
            trial_id=t.id,
            new={"case": c.code, "method": method, "read_type": c.read_type},
        )
        gone = [
            m.region
            for m in repo.missing_regions_of(tx.session, t)
            if m.patient_id == p.id and m.visit_id == v.id
        ]
        if gone:
            apply_missing(tx, r, gone, "marked by the coordinator")
        return r

    @operation("reader", "adjudicator", write=True, scoped=True)
    def raise_flag(
        self,
        op: Op,
        case_code: str,
        message: str,
        visit: str | None = None,
        films: Sequence[str] = (),
    ) -> int:
        """A reader flags one of their cases to the coordinator (e.g. "this visit may be
        another patient"); returns the flag's number. ``visit`` is the letter the reader's
        focus was on (None for the whole case) and ``films`` the films on screen, named as in
        the case: both are kept so the coordinator sees which visit and images were meant;
        the audit row names only the letter and the films' names in the case (blinding)."""
        return raise_case_flag(op, self.store.key, case_code, message, visit, films)

    @operation("reader", "adjudicator", write=True, scoped=True)
    def place_joints(self, op: Op, case_code: str, film: str, points: Sequence[JointPoint]) -> int:
        """Place joints on a film (named as in the case) of one of the caller's own cases."""
        return place_on_case_film(op, self.store.key, case_code, film, points)

    EVENT_KINDS = ("case.opened", "case.closed", "image.viewed")

    @operation(*SCORERS, write=True)
    def log_event(
        self,
        op: Op,
        kind: str,
        subject: str = "",
        detail: Mapping[str, JsonValue] | None = None,
        trial: str | None = None,
    ) -> None:
        """Record a fact for monitors: a case opened or closed, an image viewed (seconds)."""
        self._log_events(op, [(kind, subject, detail)], trial)

    @operation(*SCORERS, write=True)
    def log_events(
        self,
        op: Op,
        events: Sequence[tuple[str, str, Mapping[str, JsonValue] | None]],
        trial: str | None = None,
    ) -> None:
        """Record several facts in one transaction, (kind, subject, detail) each: a case
        closed and the films viewed while it was open, say. All are stored or none."""
        self._log_events(op, events, trial)

    def _log_events(
        self,
        op: Op,
        events: Sequence[tuple[str, str, Mapping[str, JsonValue] | None]],
        trial: str | None,
    ) -> None:
        """Record events in the operation's transaction (log_event, log_events). Each is about
        one of the caller's own cases (a film's event names its case as ``case_code``), and its
        detail holds only the seconds (at most a day), that case code and a film's zoom."""
        check_events(op.user, op.db, events, self.EVENT_KINDS)
        if not events:
            return
        tid = find_trial(op.db, trial).id if trial else None
        for kind, subject, detail in events:
            op.tx.event(kind, subject, detail, op.user.id, tid)


def check_events(
    user: UserSession,
    db: Session,
    events: Sequence[tuple[str, str, Mapping[str, JsonValue] | None]],
    kinds: Sequence[str],
) -> None:
    """Time events a caller may record: a known kind, a code as subject, about one of the
    caller's own cases (a film's event names its case as ``case_code``), and a detail of only
    the seconds (a number, at most a day), that case code and a film's zoom."""
    checked: set[str] = set()
    for kind, subject, detail in events:
        if kind not in kinds:
            raise InvalidInput(f"unknown event kind {kind!r}")
        check_code(subject, "event's subject")
        detail = detail or {}
        unknown = sorted(set(detail) - {"seconds", "case_code", "zoom"})
        if unknown:
            raise InvalidInput(
                f"an event's detail holds only seconds, case_code and zoom, not {unknown}"
            )
        zoom = detail.get("zoom", 1.0)
        if isinstance(zoom, bool) or not isinstance(zoom, int | float) or not 0 < zoom <= MAX_ZOOM:
            raise InvalidInput(
                f"a film's zoom must be a number above 0 to {MAX_ZOOM}, not {zoom!r}"
            )
        seconds = detail.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InvalidInput(f"an event's seconds must be a number, not {seconds!r}")
        if not 0 <= seconds <= MAX_EVENT_SECONDS:
            raise InvalidInput(
                f"an event's seconds must be 0 to {MAX_EVENT_SECONDS:,}, not {seconds!r}"
            )
        case = subject if kind.startswith("case.") else detail.get("case_code")
        if not isinstance(case, str):
            raise InvalidInput("a film's event names its case (case_code)")
        if case not in checked:
            own_case(user, db, case)  # NotFound unless it is the caller's own case
            checked.add(case)


def apply_missing(tx: Tx, r: Any, regions: Sequence[str], reason: str) -> None:
    """Mark the regions' areas of read ``r`` not assessable (audited per area)."""
    method = get_method(r.method)
    value = AreaScore.not_assessable("not_visible")
    for d in method.areas:
        if d.region not in regions:
            continue
        row = repo.score_row(tx.session, r, d.area)
        old = None if row is None else score_json(repo.row_score(row), row.reason_text)
        new = score_json(value, MISSING_TEXT)
        if old == new:
            continue
        repo.put_score(tx.session, r, d.area, value, MISSING_TEXT, method.order(d.area), tx.now)
        r.updated_at = tx.now
        tx.session.flush()
        tx.audit(
            "score.set",
            "read",
            r.code,
            trial_id=r.trial_id,
            old={"area": str(d.area), **(old or {})},
            new={"area": str(d.area), **(new or {})},
            reason=f"region without image: {reason}",
        )
