"""The one operation pattern and the rights table made from it.

``docs/roles.md`` is generated from the ``@operation`` declarations; it must equal what the
code declares, every public operation of every service must be declared, and a declared
operation runs in exactly one transaction with the caller's account checked inside it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import scorer.workspace
from scorer.services.operation import RIGHTS, Op, Service, operation
from scorer.services.rights import SERVICES, all_rights, rights_table
from scorer.store.schema import ROLES
from scorer.workspace import AuthError, PermissionDenied, Workspace

REPO = Path(__file__).resolve().parents[2]


def test_docs_roles_md_is_what_the_code_declares() -> None:
    committed = (REPO / "docs" / "roles.md").read_text(encoding="utf-8")
    assert committed == rights_table(), (
        "docs/roles.md differs from the @operation declarations: if the change of rights is "
        "meant, write it again with `python -m scorer.services.rights docs/roles.md` and have "
        "the change reviewed"
    )


def _service_classes() -> dict[str, type[Service]]:
    """The facade's services by attribute name, read from Workspace.__init__."""
    source = inspect.getsource(Workspace.__init__)
    out = {}
    for name in SERVICES:
        class_name = source.split(f"self.{name} = ", 1)[1].split("(", 1)[0]
        out[name] = getattr(scorer.workspace, class_name)
    return out


def test_every_public_operation_of_every_service_is_declared() -> None:
    undeclared = []
    for name, cls in _service_classes().items():
        for attr, member in inspect.getmembers(cls):
            if attr.startswith("_") or attr.isupper() or not inspect.isfunction(member):
                continue
            if isinstance(inspect.getattr_static(cls, attr), staticmethod | classmethod):
                continue
            if not hasattr(member, "rights"):
                undeclared.append(f"{name}.{attr}")
    assert undeclared == []


def test_the_table_names_every_operation_and_only_known_roles() -> None:
    rights = all_rights()
    assert len(rights) >= 60  # the introspection found the services
    names = [r.name for r in rights]
    assert len(names) == len(set(names))
    assert {r.name.split(".")[0] for r in rights} <= set(SERVICES)
    assert all(set(r.roles) <= set(ROLES) for r in rights)
    table = rights_table()
    for r in rights:
        assert f"| `{r.name}` |" in table


def test_an_unknown_role_is_refused_when_declared() -> None:
    with pytest.raises(ValueError, match="unknown role"):

        class _Bad(Service):
            @operation("superuser")
            def act(self, op: Op) -> None:
                """Do nothing."""

    assert not any(r.name.endswith(".act") for r in RIGHTS.values())


def _count_transactions(ws: Workspace) -> list[int]:
    began = [0]

    def on_begin(_conn: Any) -> None:
        began[0] += 1

    event.listen(ws.store.engine, "begin", on_begin)
    return began


def test_a_write_operation_runs_in_one_transaction(populated_copy: Any) -> None:
    c = populated_copy
    s = c.session("coord1")
    began = _count_transactions(c.ws)
    c.ws.trials.add_visit(s, c.trial, "W52", 52.0)
    assert began[0] == 1, f"add_visit opened {began[0]} transactions"
    assert ("W52",) in c.sql("SELECT label FROM visits")


def test_a_refused_operation_writes_nothing(populated_copy: Any) -> None:
    c = populated_copy
    s = c.session("reader1")
    audit_before = c.sql("SELECT count(*) FROM audit_events")
    began = _count_transactions(c.ws)
    with pytest.raises(PermissionDenied, match="a reader may not do this"):
        c.ws.trials.add_visit(s, c.trial, "W52", 52.0)
    assert began[0] == 1
    assert c.sql("SELECT count(*) FROM audit_events") == audit_before
    assert ("W52",) not in c.sql("SELECT label FROM visits")


def test_a_read_operation_runs_in_one_transaction(populated_copy: Any) -> None:
    c = populated_copy
    s = c.session("coord1")
    began = _count_transactions(c.ws)
    c.ws.trials.list_patients(s, c.trial)
    assert began[0] == 1


def test_a_role_changed_after_log_in_is_seen_inside_the_operation(populated_copy: Any) -> None:
    """The account is checked in the operation's own transaction: a role changed from another
    workstation after log-in ends the session before anything is written."""
    c = populated_copy
    s = c.session("coord1")
    c.sql_write("UPDATE users SET role = 'reader' WHERE username = 'coord1'")
    audit_before = c.sql("SELECT count(*) FROM audit_events")
    with pytest.raises(AuthError, match="role changed"):
        c.ws.trials.add_visit(s, c.trial, "W52", 52.0)
    assert s.closed
    assert c.sql("SELECT count(*) FROM audit_events") == audit_before


def test_no_operation_takes_or_returns_any() -> None:
    """Typed results (issue 26): an operation's parameters and result are typed values that
    cross a wire without guessing — dataclasses, enums, str, numbers, and sequences or
    mappings of them (films by visit letter) — never Any, nor a dict of anything."""
    loose = []
    for rights_name, member in _declared_operations():
        for name, text in inspect.get_annotations(member).items():
            if name == "op":
                continue
            shown = str(text)
            if "Any" in shown.replace("AnyStr", "") or "object" in shown:
                loose.append(f"{rights_name}: {name} is {shown}")
    assert loose == []


def _declared_operations() -> list[tuple[str, Any]]:
    out = []
    for name, cls in _service_classes().items():
        for attr, member in inspect.getmembers(cls):
            if hasattr(member, "rights"):
                out.append((f"{name}.{attr}", inspect.unwrap(member)))
    return out
