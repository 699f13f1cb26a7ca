"""Commands over trials: trial create, list, show, set, assign, campaign, lock, unlock."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from scorer.cli.options import CliError, Login, Passwords, run_store
from scorer.cli.output import EXIT_OK, OutputFormat, emit
from scorer.cli.registry import Opt, command, group

#: The method a trial created without --method scores with.
DEFAULT_METHOD = "svh"


def _designs() -> tuple[str, ...]:
    """The reading designs a trial may have."""
    from scorer.workspace import DESIGNS

    return DESIGNS


def _trial_methods() -> tuple[str, ...]:
    """The methods a trial may score with: the built-in ones not derived from another (a
    derived method is computed from its base's reads), the default first."""
    from scorer.core.methods import builtin_methods

    scored = [m.id for m in builtin_methods().values() if not m.is_derived]
    return tuple(sorted(scored, key=lambda m: m != DEFAULT_METHOD))


group(
    "trial",
    help="trials: create, list, show, set, assign, campaign, lock, unlock",
    dest="trial_cmd",
)


@command("trial", "create")
def trial_create(
    code: str | None = None,
    *,
    protocol: Annotated[str | None, Opt(metavar="FILE.toml|FILE.json")] = None,
    name: str | None = None,
    method: Annotated[list[str] | None, Opt(choices=_trial_methods)] = None,
    design: Annotated[str, Opt(choices=_designs)] = "paired_blinded",
    visits: Annotated[str | None, Opt(metavar="W0,W24,W52")] = None,
    login: Login,
) -> int:
    """from a protocol file (TOML or JSON) or options"""
    from scorer.core import protocol as protocol_mod

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        if protocol:
            try:
                proto = protocol_mod.load(Path(protocol))
            except protocol_mod.ProtocolError as exc:
                raise CliError(str(exc)) from exc
            created = code or proto.code
            ws.trials.create_trial(s, created, protocol=proto)
        else:
            if not code:
                raise CliError("give a trial code, or --protocol FILE")
            visit_list = [(v, None) for v in (visits.split(",") if visits else [])]
            ws.trials.create_trial(
                s,
                code,
                name or code,
                methods=method or [DEFAULT_METHOD],
                design=design,
                visits=visit_list,
            )
            created = code
        print(f"created trial {created}")
        return EXIT_OK

    return run_store(login, body)


@command("trial", "list", listed=False)
def trial_list(*, format: OutputFormat = "text", login: Login) -> int:
    """The trials you may see, with their design, methods and whether locked."""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        emit(format, [t.to_dict() for t in ws.trials.list_trials(s)], _trial_lines)
        return EXIT_OK

    return run_store(login, body)


def _trial_lines(trials: list[dict[str, Any]]) -> Iterator[str]:
    for t in trials:
        yield (
            f"{t['code']:<16} {t['design']:<15} {','.join(t['methods']):<12} "
            f"{t['name']}" + ("  [locked]" if t["locked"] else "")
        )


@command("trial", "show")
def trial_show(code: str, *, format: OutputFormat = "text", login: Login) -> int:
    """the trial's settings"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        settings = ws.trials.trial_settings(s, code).to_dict()
        emit(format, settings, lambda d: (f"{k:<24} {json.dumps(v)}" for k, v in d.items()))
        return EXIT_OK

    return run_store(login, body)


@command("trial", "set")
def trial_set(code: str, setting: str, value: str, *, reason: str, login: Login) -> int:
    """change one setting, with a reason (audited)

    Args:
        value: a number, a word, or JSON
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        parsed: Any = value
        with contextlib.suppress(json.JSONDecodeError):
            parsed = json.loads(value)
        ws.trials.set_trial_setting(s, code, setting, parsed, reason)
        print(f"{code}: {setting} set")
        return EXIT_OK

    return run_store(login, body)


@command("trial", "assign")
def trial_assign(
    code: str,
    reader: str,
    *,
    patients: Annotated[str | None, Opt(metavar="CODE,CODE")] = None,
    login: Login,
) -> int:
    """assign a reader (all patients, or --patients)

    Args:
        patients: patient codes of a subset
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        subset = patients.split(",") if patients else None
        ws.worklists.assign_reader(s, code, reader, subset)
        scope = f"{len(subset)} patient(s)" if subset else "all patients"
        print(f"assigned {reader} to {code} ({scope})")
        return EXIT_OK

    return run_store(login, body)


@command("trial", "campaign")
def trial_campaign(
    code: str, name: str, *, visits: Annotated[str, Opt(metavar="W104,W156")], login: Login
) -> int:
    """open a campaign for visits added later"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        n = ws.worklists.add_campaign(s, code, name, [(v, None) for v in visits.split(",")])
        print(f"{code}: campaign {n} ({name}) opened")
        return EXIT_OK

    return run_store(login, body)


@command("trial", "lock")
def trial_lock(code: str, *, login: Login) -> int:
    """lock the reading (signed, meaning approved)"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        password = pw.get(f"password of {s.username} to sign the lock (meaning approved): ")
        digest = ws.trials.lock_trial(s, code, password, username=s.username)
        print(f"{code}: reading locked (signed by {s.full_name}); reads SHA-256 {digest}")
        return EXIT_OK

    return run_store(login, body)


@command("trial", "unlock")
def trial_unlock(
    code: str, *, reason: str, second: Annotated[str, Opt(metavar="USER")], login: Login
) -> int:
    """unlock: a reason and a second person's signature

    Args:
        second: the second signer
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        password = pw.get(f"password of {s.username} to sign the unlock: ")
        second_password = pw.get(f"password of {second} (second signature): ")
        ws.trials.unlock_trial(s, code, reason, password, second, second_password)
        print(f"{code}: reading unlocked by {s.username} and {second}")
        return EXIT_OK

    return run_store(login, body)
