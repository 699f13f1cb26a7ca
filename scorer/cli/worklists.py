"""Commands over worklists: worklist generate, show, verify."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scorer.cli.options import Login, Passwords, run_store
from scorer.cli.output import EXIT_ERROR, EXIT_OK, OutputFormat, emit
from scorer.cli.registry import command, group

group("worklist", help="worklists: generate, show, verify", dest="worklist_cmd")


@command("worklist", "generate")
def worklist_generate(
    *, trial: str, login: Login, reader: str | None = None, campaign: int | None = None
) -> int:
    """make worklists from fresh stored seeds"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        made = ws.worklists.generate_worklists(s, trial, [reader] if reader else None, campaign)
        for who, n in sorted(made.items()):
            print(f"{who}: {n} case(s)")
        if not made:
            print("every assigned reader has a worklist already")
        return EXIT_OK

    return run_store(login, body)


@command("worklist", "show")
def worklist_show(
    *,
    trial: str,
    login: Login,
    reader: str | None = None,
    campaign: int | None = None,
    format: OutputFormat = "text",
) -> int:
    """a worklist as you may see it"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        rows = ws.worklists.worklist(s, trial, reader, campaign)
        emit(format, [r.to_dict() for r in rows], _worklist_lines)
        return EXIT_OK

    return run_store(login, body)


def _worklist_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    for r in rows:
        extra = ""
        if "patient" in r:
            extra = (
                f"  {r['reader']:<10} patient {r['patient']} "
                f"{'/'.join(r['visits'])} {r['read_type']}"
            )
        elif "reader" in r:
            extra = f"  {r['reader']}"
        yield f"{r['progress']:>10}  {r['code']}  {r['status']:<12}{extra}"


@command("worklist", "verify")
def worklist_verify(*, trial: str, login: Login) -> int:
    """regenerate every worklist from its seed and compare"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        problems = ws.worklists.verify_worklists(s, trial)
        for p in problems:
            print(f"DIFFERS: {p}")
        if problems:
            return EXIT_ERROR
        print("every worklist regenerates exactly from its stored seed")
        return EXIT_OK

    return run_store(login, body)
