"""The other workstation of ``test_sessions_end.py``: sessions open in a process of their own.

``python session_child.py CONFIG`` (CONFIG: a JSON file with the database ``db`` and the
``passwords`` of the users to log in) opens the workspace, logs every user in, makes one call
with each session (``trials.list_trials``) and prints ``ready``. Then it waits for a line on
standard input (the parent has changed the accounts meanwhile), calls again with each session,
twice, and prints one JSON line per user: ``{"user": ..., "first": ..., "second": ...}``, each
call's result ``"ok"`` or ``"<ErrorClass>: message"`` and whether the session is now closed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def call(ws: Any, s: Any) -> str:
    from scorer.workspace import ScorerError

    try:
        ws.trials.list_trials(s)
    except ScorerError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def main(config: str) -> int:
    from scorer.workspace import Workspace

    cfg = json.loads(Path(config).read_text(encoding="utf-8"))
    ws = Workspace.open(db=cfg["db"])
    try:
        sessions = {u: ws.accounts.login(u, pw) for u, pw in cfg["passwords"].items()}
        for user, s in sessions.items():
            result = call(ws, s)
            if result != "ok":
                raise AssertionError(f"{user} before the changes: {result}")
        print("ready", flush=True)
        sys.stdin.readline()  # the parent has changed the accounts
        for user, s in sessions.items():
            first = call(ws, s)
            second = call(ws, s)
            print(json.dumps({"user": user, "first": first, "second": second, "closed": s.closed}))
        sys.stdout.flush()
    finally:
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
