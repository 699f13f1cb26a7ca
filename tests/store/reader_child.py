"""A reading workstation that is killed mid-case, for ``test_sessions_as_they_happened.py``.

``python reader_child.py CONFIG`` (CONFIG: a JSON file with the database ``db``, the ``trial``,
the reader's ``username`` and ``password``, the ``case`` to open and the number of ``scores``)
logs in, opens the case, records a film viewed, enters that many scores on the case's visit A,
prints the session id and ``ready``, and waits to be killed (it never logs out).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(config: str) -> int:
    from scorer.core.methods import get_method
    from scorer.core.reads import AreaScore
    from scorer.workspace import Workspace

    cfg = json.loads(Path(config).read_text(encoding="utf-8"))
    ws = Workspace.open(db=cfg["db"])
    s = ws.accounts.login(cfg["username"], cfg["password"])
    opened = ws.reading.open_case(s, cfg["case"])
    detail = {"seconds": 4.0, "case_code": opened.code, "zoom": 1.5}
    ws.reading.log_events(s, [("image.viewed", "FILM-A", detail)], cfg["trial"])
    method = get_method(opened.method)
    for d in method.areas[: cfg["scores"]]:
        ws.reading.set_score(s, opened.reads["A"], d.area, AreaScore.scored(0))
    print(s.id, flush=True)
    print("ready", flush=True)
    while True:  # the parent kills this process: no log-out, no case.closed
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
