"""`scorer adjudication freeze-sdc`: the preview printed first, then the signature asked for."""

from __future__ import annotations

import json

from tests.cli_golden.conftest import Cli


def test_freeze_sdc_prints_what_it_freezes_and_signs_it(cli: Cli) -> None:
    rc, out, err = cli.run(
        "adjudication freeze-sdc --trial EXAMPLE --reason golden @coord1", "{pw[coord1]}\n"
    )
    assert rc == 0, err
    preview, frozen = out.splitlines()
    assert preview.startswith("SDC (95%): ") and "patients read twice, k=" in preview
    value = preview.split(": ", 1)[1].split(" ", 1)[0]
    assert frozen.startswith(f"SDC frozen at {value} (signed by ")
    rc, out, _ = cli.run("trial show EXAMPLE --format json @coord1")
    assert rc == 0 and json.loads(out)["frozen_sdc"] == float(value)
    rc, out, _ = cli.run("audit verify --format json --db {db}")
    assert rc == 0 and json.loads(out)["ok"] is True


def test_freeze_sdc_with_a_wrong_password_freezes_nothing(cli: Cli) -> None:
    rc, out, err = cli.run(
        "adjudication freeze-sdc --trial EXAMPLE --reason golden @coord1", "Wrong-pass-000\n"
    )
    assert rc == 1
    assert out.startswith("SDC (95%): ")  # shown before the password was asked for
    assert "wrong password (" in err and "attempt(s) left before the account locks" in err
    rc, out, _ = cli.run("trial show EXAMPLE --format json @coord1")
    assert json.loads(out)["frozen_sdc"] is None
