"""A trial's protocol settings: methods, reading design, visits and analysis rules.

Methods, design, visits and worklist seeds freeze at the first signed read; analysis settings
may change until the reading is locked, each change audited with a reason.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from scorer.core.methods import MethodError, builtin_methods
from scorer.core.progression import parse_threshold
from scorer.core.totals import AREA_RULES, OPERATED_RULES, VISIT_RULES
from scorer.core.worklist import DESIGNS

ADJUDICATION_TRIGGERS: tuple[str, ...] = ("difference", "frozen_sdc", "none")
FINAL_RULES: tuple[str, ...] = ("mean_all", "closest_two", "adjudicator")
# Settings that decide what is read and how: frozen at the first signed read.
FROZEN_AT_FIRST_SIGNATURE: frozenset[str] = frozenset({"methods", "design", "visits"})
#: The modalities whose files may be declared free of burned-in text (no_burned_in_text).
BURNED_IN_MODALITIES: tuple[str, ...] = ("CR", "DX")


class ProtocolError(ValueError):
    """A protocol file or setting that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class VisitDef:
    """A protocol visit: its label and nominal week."""

    label: str
    week: float | None = None


@dataclass(frozen=True)
class Protocol:
    """Every trial setting, declared once with its default."""

    code: str
    name: str = ""
    methods: tuple[str, ...] = ("svh",)
    design: str = "paired_blinded"
    visits: tuple[VisitDef, ...] = ()
    sdc_level: int = 95
    thresholds: tuple[str, ...] = ("sdc95", "sdc80", "0", "0.5")
    rapid_threshold: str = "rapid>=5"
    missing_areas: str = "paired_proportional"
    max_unused_share: float = 0.25
    missing_visits: str = "missing"
    operated: str = "missing"
    adjudication_trigger: str = "frozen_sdc"
    adjudication_difference: float | None = None
    frozen_sdc: float | None = None
    final_rule: str = "closest_two"
    reread_share: float = 0.10
    reread_min_gap: int = 20
    # Calibration: patient codes of the training set (never on primary worklists) and the
    # user whose signed reads of them are the reference; none means no calibration step.
    calibration_patients: tuple[str, ...] = ()
    calibration_reference: str = ""
    # DICOM: the calling AE titles (modalities, PACS) allowed to send this trial images.
    dicom_senders: tuple[str, ...] = ()
    # Image QC: modalities (CR, DX) whose files this trial knows carry no burned-in text, so
    # such a file without Burned In Annotation is not flagged "burned-in text unknown".
    no_burned_in_text: tuple[str, ...] = ()
    version: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"] = list(self.methods)
        d["visits"] = [{"label": v.label, "week": v.week} for v in self.visits]
        d["thresholds"] = list(self.thresholds)
        d["calibration_patients"] = list(self.calibration_patients)
        d["dicom_senders"] = list(self.dicom_senders)
        d["no_burned_in_text"] = list(self.no_burned_in_text)
        d.pop("extra")
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)


SETTING_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(Protocol) if f.name not in ("code", "version", "extra")
)


def _float(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ProtocolError(f"{name}: must be a number, not {v!r}")
    return float(v)


def validate(p: Protocol) -> Protocol:
    """Check every setting; raise ProtocolError naming the first bad one."""
    methods = builtin_methods()
    if not p.methods:
        raise ProtocolError("methods: at least one method is required")
    for m in p.methods:
        if m not in methods:
            raise ProtocolError(f"methods: unknown method {m!r} ({', '.join(sorted(methods))})")
        if methods[m].is_derived:
            raise ProtocolError(f"methods: {m} is derived from {methods[m].derived_from}")
    if p.design not in DESIGNS:
        raise ProtocolError(f"design: unknown reading design {p.design!r} ({', '.join(DESIGNS)})")
    labels = [v.label for v in p.visits]
    if len(set(labels)) != len(labels):
        raise ProtocolError("visits: a visit label appears twice")
    for v in p.visits:
        if not v.label or not all(c.isalnum() or c in "._-" for c in v.label):
            raise ProtocolError(f"visits: bad visit label {v.label!r}")
        if v.label.startswith("-"):
            raise ProtocolError(
                f"visits: visit label {v.label!r} starts with '-', which a spreadsheet runs "
                "as a formula"
            )
    if p.sdc_level not in (95, 80):
        raise ProtocolError("sdc_level: must be 95 or 80")
    for t in p.thresholds:
        try:
            parsed = parse_threshold(t)
        except ValueError as exc:
            raise ProtocolError(f"thresholds: {exc}") from None
        if parsed.annualised:
            raise ProtocolError(
                f"thresholds: {t!r} is rapid progression on annualised change: "
                "set it as rapid_threshold"
            )
    try:
        rapid = parse_threshold(p.rapid_threshold)
    except ValueError as exc:
        raise ProtocolError(f"rapid_threshold: {exc}") from None
    if not rapid.annualised:
        raise ProtocolError(
            f"rapid_threshold: {p.rapid_threshold!r} is not on annualised change: "
            "use rapid>=5 or rapid>5"
        )
    if p.missing_areas not in AREA_RULES:
        raise ProtocolError(f"missing_areas: one of {', '.join(AREA_RULES)}")
    if not 0 <= p.max_unused_share < 1:
        raise ProtocolError("max_unused_share: must be at least 0 and below 1")
    if p.missing_visits not in VISIT_RULES:
        raise ProtocolError(f"missing_visits: one of {', '.join(VISIT_RULES)}")
    if p.operated not in OPERATED_RULES:
        raise ProtocolError(f"operated: one of {', '.join(OPERATED_RULES)}")
    if p.adjudication_trigger not in ADJUDICATION_TRIGGERS:
        raise ProtocolError(f"adjudication_trigger: one of {', '.join(ADJUDICATION_TRIGGERS)}")
    if p.adjudication_trigger == "difference" and p.adjudication_difference is None:
        raise ProtocolError("adjudication_difference: needed when the trigger is 'difference'")
    if p.final_rule not in FINAL_RULES:
        raise ProtocolError(f"final_rule: one of {', '.join(FINAL_RULES)}")
    if not 0 <= p.reread_share <= 1:
        raise ProtocolError("reread_share: must be between 0 and 1")
    if p.reread_min_gap < 0:
        raise ProtocolError("reread_min_gap: cannot be negative")
    if p.calibration_patients and not p.calibration_reference:
        raise ProtocolError("calibration_reference: name whose reads are the reference")
    for aet in p.dicom_senders:
        problem = ae_title_problem(aet)
        if problem:
            raise ProtocolError(f"dicom_senders: {problem}")
    for modality in p.no_burned_in_text:
        if modality not in BURNED_IN_MODALITIES:
            raise ProtocolError(
                f"no_burned_in_text: {modality!r} is not one of {', '.join(BURNED_IN_MODALITIES)}"
            )
    return p


def ae_title_problem(aet: str) -> str:
    """What is wrong with a DICOM AE title (PS3.5 AE: 1-16 characters of the default
    repertoire, no backslash or control character, not only spaces); "" if nothing."""
    if not aet.strip():
        return "an AE title cannot be empty"
    if len(aet) > 16:
        return f"AE title {aet!r} is longer than 16 characters"
    if any(not (" " <= c <= "~") or c == "\\" for c in aet):
        return f"AE title {aet!r} may hold only printable ASCII characters, no backslash"
    return ""


def _coerce(name: str, value: Any) -> Any:
    """A setting's value from a protocol file or a command line, in the field's type."""
    if name == "methods":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ProtocolError("methods: a list of method ids")
        return tuple(str(m).strip() for m in items if str(m).strip())
    if name == "thresholds":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ProtocolError("thresholds: a list such as ['sdc95', '0.5']")
        return tuple(str(t).strip() for t in items)
    if name == "calibration_patients":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ProtocolError("calibration_patients: a list of patient codes")
        return tuple(sorted({str(t).strip() for t in items if str(t).strip()}))
    if name == "dicom_senders":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ProtocolError("dicom_senders: a list of AE titles")
        return tuple(sorted({str(t).strip() for t in items if str(t).strip()}))
    if name == "no_burned_in_text":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ProtocolError("no_burned_in_text: a list of modalities (CR, DX)")
        return tuple(sorted({str(t).strip().upper() for t in items if str(t).strip()}))
    if name == "visits":
        out = []
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ProtocolError("visits: a list of labels or {label, week} tables")
        for v in items:
            if isinstance(v, str):
                label, _, week = v.partition(":")
                out.append(VisitDef(label.strip(), float(week) if week else None))
            elif isinstance(v, dict) and "label" in v:
                wk = v.get("week")
                out.append(VisitDef(str(v["label"]), None if wk is None else _float(wk, "week")))
            else:
                raise ProtocolError(f"visits: bad visit {v!r}")
        return tuple(out)
    if name in ("sdc_level", "reread_min_gap"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ProtocolError(f"{name}: must be a whole number") from None
    if name in ("max_unused_share", "reread_share"):
        return _float(_number(value, name), name)
    if name in ("adjudication_difference", "frozen_sdc"):
        if value in (None, "", "none"):
            return None
        return _float(_number(value, name), name)
    return str(value)


def _number(value: Any, name: str) -> Any:
    """A number written as text ("0.2") as a float; anything else as it is (``_float``
    judges it). Text that is no number is refused with the setting's name."""
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        raise ProtocolError(f"{name}: must be a number, not {value!r}") from None


def from_mapping(data: Mapping[str, Any], source: str = "protocol") -> Protocol:
    """A validated protocol from parsed TOML or JSON."""
    known = set(SETTING_NAMES) | {"code", "version"}
    unknown = set(data) - known
    if unknown:
        raise ProtocolError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
    if "code" not in data or not str(data["code"]).strip():
        raise ProtocolError(f"{source}: code: the trial code is required")
    if data.get("version", 1) != 1:
        raise ProtocolError(f"{source}: version: this scorer reads protocol version 1")
    kwargs: dict[str, Any] = {"code": str(data["code"])}
    try:
        for k, v in data.items():
            if k not in ("code", "version"):
                kwargs[k] = _coerce(k, v)
        return validate(Protocol(**kwargs))
    except ProtocolError as exc:
        raise ProtocolError(f"{source}: {exc}") from None
    except (MethodError, ValueError) as exc:
        raise ProtocolError(f"{source}: {exc}") from None


#: The largest protocol file read, in bytes (a protocol is a few hundred).
MAX_PROTOCOL_BYTES = 1_000_000


def load(path: Path) -> Protocol:
    """A protocol file in TOML (.toml) or JSON (.json): a regular file of at most
    :data:`MAX_PROTOCOL_BYTES` (a device such as /dev/zero, a pipe or a folder is refused
    before any reading)."""
    try:
        # Without blocking: opening a named pipe for reading waits for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as file:
            st = os.fstat(file.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ProtocolError(
                    f"{path}: not a regular file; a protocol is a .toml or .json file"
                )
            if st.st_size > MAX_PROTOCOL_BYTES:
                raise ProtocolError(
                    f"{path}: {st.st_size:,} bytes; a protocol file is at most "
                    f"{MAX_PROTOCOL_BYTES:,}"
                )
            raw = file.read(MAX_PROTOCOL_BYTES + 1)
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_PROTOCOL_BYTES:
        raise ProtocolError(f"{path}: a protocol file is at most {MAX_PROTOCOL_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"protocol file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from exc
    text = text.removeprefix("\ufeff")  # Windows editors start UTF-8 with a BOM
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProtocolError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: must hold a table of settings")
    return from_mapping(data, str(path))


def from_json(text: str) -> Protocol:
    return from_mapping(json.loads(text), "stored protocol")


def with_setting(p: Protocol, name: str, value: Any) -> Protocol:
    """A copy with one setting changed (validated)."""
    if name not in SETTING_NAMES:
        raise ProtocolError(f"unknown setting {name!r} (settings: {', '.join(SETTING_NAMES)})")
    return validate(replace(p, **{name: _coerce(name, value)}))
