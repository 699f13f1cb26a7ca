"""The rights table: every operation of every service and the roles that may run it.

Made from the same ``@operation`` declarations that enforce the rights, and committed as
``docs/roles.md``; ``tests/store/test_operations.py`` fails when the two differ, so a change of
rights is a reviewed change of that file. Write it again with
``python -m scorer.services.rights docs/roles.md``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from scorer.services.operation import RIGHTS, Rights
from scorer.store.schema import ROLES

#: The service modules, in the order the facade lists them.
SERVICES = (
    "accounts",
    "trials",
    "worklists",
    "reading",
    "images",
    "coordination",
    "calibration",
    "adjudication",
    "exchange",
    "oversight",
    "drift",
    "database",
)


def all_rights() -> list[Rights]:
    """Every declared operation, by service in the facade's order, then by name."""
    for name in SERVICES:
        importlib.import_module(f"scorer.services.{name}")
    order = {name: i for i, name in enumerate(SERVICES)}
    return sorted(
        RIGHTS.values(),
        key=lambda r: (order.get(r.name.split(".", 1)[0], len(order)), r.name),
    )


def _cell(rights: Rights, role: str) -> str:
    if rights.session == "own":
        return "own"
    return "yes" if not rights.roles or role in rights.roles else ""


def rights_table() -> str:
    """docs/roles.md: one row per operation, one column per role."""
    lines = [
        "# Who may do what",
        "",
        "Generated from the `@operation` declarations in `scorer/services/` by",
        "`python -m scorer.services.rights docs/roles.md`; `tests/store/test_operations.py`",
        "fails when this file and the code differ. \"yes\": the role may run the operation",
        "(the service checks it in the operation's own transaction); \"own\": the operation",
        "handles the session itself (logging in, out, locking, unlocking, a first password",
        "change), for any user. *writes*: the operation writes to the database — trial data or",
        "accounts with their audit rows in the same transaction, or (an export) the audit row",
        "that records what was exported.",
        "",
        "| operation | what it does | writes | " + " | ".join(ROLES) + " |",
        "|---|---|---|" + "---|" * len(ROLES),
    ]
    for r in all_rights():
        cells = [f"`{r.name}`", r.summary.replace("|", "\\|"), "writes" if r.write else ""]
        cells += [_cell(r, role) for role in ROLES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = rights_table()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
