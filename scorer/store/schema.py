"""The database schema: trials, patients, visits, images, users, reads, scores, signatures,
the audit trail and the event log (SQLAlchemy 2, typed)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("reader", "adjudicator", "coordinator", "monitor", "admin")


class Base(DeclarativeBase):
    """Declarative base with a naming convention for constraints."""

    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """An account. Passwords are argon2id hashes; nothing else about them is stored."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[str | None] = mapped_column(String(32), default=None)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        CheckConstraint(
            "role IN ('reader','adjudicator','coordinator','monitor','admin')", name="role"
        ),
    )


class PasswordHistory(Base):
    """The argon2id hashes of an account's last passwords (the current one included), so a new
    password cannot repeat one of them; older rows are deleted."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    set_at: Mapped[str] = mapped_column(String(32))


class Trial(Base):
    """A trial: its protocol settings live in ``config`` (JSON text), versioned."""

    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    methods: Mapped[str] = mapped_column(String(200))
    design: Mapped[str] = mapped_column(String(32), default="paired_blinded")
    config: Mapped[str] = mapped_column(Text, default="{}")
    locked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[str] = mapped_column(String(32))

    patients: Mapped[list[Patient]] = relationship(back_populates="trial")
    visits: Mapped[list[Visit]] = relationship(back_populates="trial")


class Patient(Base):
    """A patient of a trial: a random opaque code for everyone, the real ID for coordinators."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    code: Mapped[str] = mapped_column(String(32))
    real_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(32))

    trial: Mapped[Trial] = relationship(back_populates="patients")

    __table_args__ = (
        UniqueConstraint("trial_id", "code", name="uq_patients_trial_code"),
        UniqueConstraint("trial_id", "real_id", name="uq_patients_trial_real_id"),
    )


class Visit(Base):
    """A protocol visit of a trial (W0, W24, ...), with its nominal week."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    label: Mapped[str] = mapped_column(String(32))
    nominal_week: Mapped[float | None] = mapped_column(default=None)

    trial: Mapped[Trial] = relationship(back_populates="visits")

    __table_args__ = (UniqueConstraint("trial_id", "label", name="uq_visits_trial_label"),)


class Image(Base):
    """A radiograph of a patient at a visit; the regions it covers are in ImageRegion."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), default=None)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str | None] = mapped_column(String(128), default=None)
    acquisition_date: Mapped[str | None] = mapped_column(String(10), default=None)
    reader_path: Mapped[str] = mapped_column(Text, default="")
    original_path: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[str] = mapped_column(Text, default="")
    # The readers' copy: its SHA-256 (it never changes after import) and geometry.
    reader_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    transfer_syntax: Mapped[str | None] = mapped_column(String(64), default=None)
    rows: Mapped[int | None] = mapped_column(Integer, default=None)
    columns: Mapped[int | None] = mapped_column(Integer, default=None)
    source_name: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(32))
    # Rectangles masked on the readers' copy (JSON [[x, y, width, height], ...]).
    masks: Mapped[str] = mapped_column(Text, default="")
    # Quality control: "passed" (reaches cases), "pending" (flagged at import, waiting for
    # the coordinator) or "failed" (never reaches a case), with the coordinator's reason.
    qc_state: Mapped[str] = mapped_column(String(16), default="passed")
    qc_reason: Mapped[str] = mapped_column(Text, default="")
    # SHA-256 of the decoded stored pixel values: the same image re-sent in another transfer
    # syntax is known by it (None for images imported before it was kept).
    pixel_sha256: Mapped[str | None] = mapped_column(String(64), default=None)

    regions: Mapped[list[ImageRegion]] = relationship(cascade="all, delete-orphan")


class ImageRegion(Base):
    """One region (LH, RH, LF, RF) an image covers."""

    __tablename__ = "image_regions"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(2), primary_key=True)


class JointPosition(Base):
    """Where one joint lies on one image (stored-image pixels: x column, y row) and how it was
    placed (scorer.core.joints.JOINT_SOURCES); the joint view centres on it."""

    __tablename__ = "joint_positions"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(2), primary_key=True)
    joint: Mapped[str] = mapped_column(String(16), primary_key=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    placed_at: Mapped[str] = mapped_column(String(32))


class LocatorRun(Base):
    """The automatic joint locator's run on one image at import: what it took the film for
    (``hand``, ``foot`` or ``other``: not a hand or foot film, left without positions), the
    regions it found, why it found none, its version and how long it took."""

    __tablename__ = "locator_runs"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    version: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    regions: Mapped[str] = mapped_column(String(16))  # found regions, space-separated
    reason: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float)
    ran_at: Mapped[str] = mapped_column(String(32))


class LocatedJoint(Base):
    """Where the locator found one joint of an image and how sure it was. A sure joint is also
    placed (``joint_positions``, source ``locator``); an unsure one is left to the three-click
    fit and listed for QC on the desk."""

    __tablename__ = "located_joints"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(2), primary_key=True)
    joint: Mapped[str] = mapped_column(String(16), primary_key=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    sure: Mapped[bool] = mapped_column(Boolean)


class JointProposal(Base):
    """Where registration to the same patient's film of another visit (``reference_id``) puts
    one joint of an image, how well the neighbourhood matched, and how far the image's own
    position lies from it (``distance_mm``; NULL while it has none): a distance over the QC
    threshold is a disagreement the desk lists."""

    __tablename__ = "joint_proposals"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(2), primary_key=True)
    joint: Mapped[str] = mapped_column(String(16), primary_key=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    sure: Mapped[bool] = mapped_column(Boolean)
    distance_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    computed_at: Mapped[str] = mapped_column(String(32))


class Read(Base):
    """One reader's read of one patient at one visit with one method and read type."""

    __tablename__ = "reads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(32))
    read_type: Mapped[str] = mapped_column(String(16), default="primary")
    status: Mapped[str] = mapped_column(String(16), default="in_progress")
    note: Mapped[str] = mapped_column(Text, default="")
    # "entered" at a workstation (e-signed there) or "imported" from a reads CSV.
    origin: Mapped[str] = mapped_column(String(16), default="entered")
    # The visit date an imported read came with; entered reads take theirs from the images.
    visit_date: Mapped[str | None] = mapped_column(String(10), default=None)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))

    scores: Mapped[list[AreaScoreRow]] = relationship(
        cascade="all, delete-orphan", order_by="AreaScoreRow.position"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint(
            "read_type IN ('primary','reread','adjudication','calibration','imported')",
            name="read_type",
        ),
        CheckConstraint("status IN ('in_progress','signed','void')", name="status"),
        Index("ix_reads_reader", "reader_id", "trial_id"),
        Index("ix_reads_patient_visit", "patient_id", "visit_id"),
    )


class Assignment(Base):
    """A reader assigned to a trial: all patients, or the subset in AssignmentPatient."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scope: Mapped[str] = mapped_column(String(8), default="all")
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("trial_id", "user_id", name="uq_assignments_trial_user"),
        CheckConstraint("scope IN ('all','subset')", name="scope"),
    )


class AssignmentPatient(Base):
    """A patient in a reader's subset assignment."""

    __tablename__ = "assignment_patients"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)


class Campaign(Base):
    """A reading campaign: the visits read together (an extension year is a new campaign)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    visits: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("trial_id", "number", name="uq_campaigns_trial_number"),)


class Worklist(Base):
    """One reader's worklist in a campaign, with the seed and inputs it is made from."""

    __tablename__ = "worklists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    seed: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[str] = mapped_column(Text)
    generated_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("campaign_id", "reader_id", name="uq_worklists_campaign_reader"),
    )


class Case(Base):
    """A case of a worklist: a patient with visits in display order, under an opaque code."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worklist_id: Mapped[int] = mapped_column(ForeignKey("worklists.id"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    read_type: Mapped[str] = mapped_column(String(16), default="primary")
    original_position: Mapped[int | None] = mapped_column(Integer, default=None)
    visits: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("worklist_id", "position", name="uq_cases_worklist_position"),
    )


class ReaderFlag(Base):
    """A message a reader raises on a case for the coordinator, and its answer."""

    __tablename__ = "reader_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[str] = mapped_column(String(32))
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    closed_at: Mapped[str | None] = mapped_column(String(32), default=None)
    # What the reader had on screen when flagging: the visit (the one their focus was on,
    # None for a flag on the whole case) and the images shown (JSON list of image codes).
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), default=None)
    images: Mapped[str | None] = mapped_column(Text, default=None)  # None before 0011


class MissingRegion(Base):
    """A region of a patient's visit with no usable image: not assessable for every reader."""

    __tablename__ = "missing_regions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    region: Mapped[str] = mapped_column(String(2))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("patient_id", "visit_id", "region", name="uq_missing_regions_area"),
    )


class Release(Base):
    """A reader released to real reading after calibration (by a coordinator, with a reason)."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    released_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("trial_id", "user_id", name="uq_releases_reader"),)


class Adjudication(Base):
    """A discrepant patient in the adjudication queue: why, who adjudicates, the result."""

    __tablename__ = "adjudications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    reasons: Mapped[str] = mapped_column(Text)  # JSON list of sentences
    changes: Mapped[str] = mapped_column(Text)  # JSON {reader: change}
    rule: Mapped[str] = mapped_column(Text)  # JSON: trigger, limit, cutoff
    status: Mapped[str] = mapped_column(String(16), default="queued")  # assigned, done
    adjudicator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    result: Mapped[str] = mapped_column(Text, default="")  # JSON once done
    queued_at: Mapped[str] = mapped_column(String(32))
    done_at: Mapped[str | None] = mapped_column(String(32), default=None)

    __table_args__ = (UniqueConstraint("trial_id", "patient_id", name="uq_adjudications_patient"),)


class AreaScoreRow(Base):
    """The score of one area in a read, or the reason it is not assessable."""

    __tablename__ = "area_scores"

    read_id: Mapped[int] = mapped_column(ForeignKey("reads.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(2), primary_key=True)
    joint: Mapped[str] = mapped_column(String(8), primary_key=True)
    feature: Mapped[str] = mapped_column(String(3), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    score: Mapped[int | None] = mapped_column(Integer, default=None)
    sides: Mapped[str | None] = mapped_column(String(32), default=None)
    reason: Mapped[str | None] = mapped_column(String(16), default=None)
    reason_text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        CheckConstraint("(score IS NULL) <> (reason IS NULL)", name="score_or_reason"),
        CheckConstraint(
            "reason IS NULL OR reason IN ('not_visible','image_quality','operated','other')",
            name="reason",
        ),
    )


class Signature(Base):
    """An electronic signature event (append-only): signing, or voiding a signature."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        CheckConstraint("kind IN ('sign','void')", name="kind"),
        CheckConstraint("meaning IN ('authored','reviewed','approved')", name="meaning"),
        Index("ix_signatures_entity", "entity", "entity_id"),
    )


class AuditEvent(Base):
    """One row of the tamper-evident audit trail (HMAC-chained, append-only)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    old: Mapped[str] = mapped_column(Text, default="")
    new: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    trial_id: Mapped[int | None] = mapped_column(Integer, default=None)
    mac: Mapped[str] = mapped_column(String(64))
    # The log-in session whose operation wrote the row ("" for rows written outside one and
    # for every row before revision 0011). No Python default: the 0008 baseline inserts rows
    # before the column exists.
    session: Mapped[str] = mapped_column(String(32), server_default="")
    # The chain the row belongs to (revision 0012): 0 the centre's (accounts, and every row
    # before 0012), else the ID of the trial whose chain it is; and its place in that chain
    # (1, 2, ...; NULL on the rows before 0012, whose place is their ``seq``). ``seq`` orders
    # all chains together: taken after the transaction's last change, so that of two
    # transactions changing one row, the later commit has the higher numbers.
    chain: Mapped[int] = mapped_column(Integer, server_default="0")
    link: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (Index("ux_audit_events_chain_link", "chain", "link", unique=True),)


class DriftAlert(Base):
    """A reader crossing a drift control limit, raised once when it happens (audited), and
    the coordinator's acknowledgement."""

    __tablename__ = "drift_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # What crossed: e.g. "difference" (CUSUM of status-total differences from the others'
    # mean), "reread" or "calibration"; and in which direction ("up", "down" or "").
    measure: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8), default="")
    statistic: Mapped[float] = mapped_column(Float)
    limit: Mapped[float] = mapped_column(Float)
    reads: Mapped[int] = mapped_column(Integer)  # the reader's signed reads counted so far
    raised_at: Mapped[str] = mapped_column(String(32))
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    acknowledged_at: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class Event(Base):
    """One fact of the event log: logins, locks, cases opened, images viewed, exports."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64))
    session: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(32))
    trial_id: Mapped[int | None] = mapped_column(Integer, default=None)
    subject: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    mac: Mapped[str] = mapped_column(String(64))
    # The chain and place in it, as on audit rows (revision 0012).
    chain: Mapped[int] = mapped_column(Integer, server_default="0")
    link: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (
        Index("ix_events_user_at", "username", "at"),
        Index("ux_events_chain_link", "chain", "link", unique=True),
    )


class ServerSession(Base):
    """A log-in session held by ``scorer server``: the SHA-256 of its bearer token (the token
    itself is never stored) and the session's state between requests."""

    __tablename__ = "server_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    started: Mapped[str] = mapped_column(String(32))
    last_active: Mapped[str] = mapped_column(String(32))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    locked: Mapped[bool] = mapped_column(default=False)
    signed_once: Mapped[bool] = mapped_column(default=False)
    password_mark: Mapped[int] = mapped_column(Integer, default=0)


class LoginAttempt(Base):
    """One log-in attempt at ``scorer server``, by account and by client address, kept for the
    rate limit's sliding window (older rows are pruned)."""

    __tablename__ = "server_login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[float] = mapped_column()

    __table_args__ = (Index("ix_server_login_attempts_key_at", "key", "at"),)


APPEND_ONLY_TABLES = ("audit_events", "signatures", "events")
