"""Trials, protocol settings, assignments, worklists, re-reads and campaigns via the facade."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from scorer.cli import main
from scorer.core import protocol as protocol_mod
from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.workspace import InvalidInput, NotFound, PermissionDenied, Workspace

PW = {
    "admin": "Root-pass-0001",
    "cora": "Coord-pass-002",
    "rita": "Reader-pass-003",
    "remy": "Reader-pass-004",
    "moe": "Monitor-pass-05",
}
ROLE = {"cora": "coordinator", "rita": "reader", "remy": "reader", "moe": "monitor"}


def setup_trial(
    db: str,
    n_patients: int = 30,
    visits: tuple[str, ...] = ("W0", "W52"),
    design: str = "paired_blinded",
) -> tuple[Workspace, dict[str, object], list[str]]:
    ws = Workspace.initialize("admin", "Ada Admin", PW["admin"], db=db)
    a = ws.accounts.login("admin", PW["admin"])
    sessions: dict[str, object] = {"admin": a}
    for user, role in ROLE.items():
        ws.accounts.add_user(a, user, user.title(), role, "Temporary-pass-9")
        s = ws.accounts.login(user, "Temporary-pass-9")
        ws.accounts.change_password(s, "Temporary-pass-9", PW[user])
        sessions[user] = s
    c = sessions["cora"]
    ws.trials.create_trial(c, "T1", "Trial", design=design, visits=[(v, None) for v in visits])
    codes = [ws.trials.add_patient(c, "T1", f"SITE-{i:03d}") for i in range(n_patients)]
    return ws, sessions, codes


def sign_case(ws: Workspace, s: object, case_code: str) -> None:
    case = ws.reading.open_case(s, case_code)
    for read in case.reads.values():
        for d in get_method("svh").areas:
            v = AreaScore.from_sides([0, 0]) if d.sides else AreaScore(score=0)
            ws.reading.set_score(s, read, d.area, v)
        ws.reading.sign_read(s, read, PW[s.username], username=s.username)


def test_worklists_per_reader_reproduce_from_their_seeds(fresh_db: str, tmp_path: Path) -> None:
    ws, ss, codes = setup_trial(fresh_db)
    c = ss["cora"]
    ws.worklists.assign_reader(c, "T1", "rita")
    ws.worklists.assign_reader(c, "T1", "remy", codes[:12])
    made = ws.worklists.generate_worklists(c, "T1")
    assert made == {"rita": 33, "remy": 13}  # 30 + 3 re-reads; 12 + 1
    full = ws.worklists.worklist(c, "T1")
    rita = [r for r in full if r.reader == "rita"]
    remy = [r for r in full if r.reader == "remy"]
    assert {r.patient for r in remy} == set(codes[:12])
    assert [r.patient for r in rita[:12]] != [r.patient for r in remy[:12]]
    assert ws.worklists.verify_worklists(c, "T1") == []
    # The audit trail holds the seed and inputs: regenerating from them gives the stored order.
    from scorer.core.worklist import WorklistInput, generate

    gen = next(
        e
        for e in ws.oversight.audit_trail(c)
        if e.action == "worklist.generate" and e.entity_id.endswith("/rita")
    )
    info = json.loads(gen.new)
    inputs = info["inputs"]
    again = generate(
        WorklistInput(
            info["seed"],
            inputs["reader"],
            inputs["design"],
            inputs["patients"],
            inputs["visits"],
            inputs["reread_share"],
            inputs["min_gap"],
            inputs["algorithm"],
        )
    )
    assert [(x.code, x.patient, tuple(x.visits)) for x in again] == [
        (r.code, r.patient, r.visits) for r in rita
    ]
    # A second generation keeps the stored seeds.
    assert ws.worklists.generate_worklists(c, "T1") == {}
    with pytest.raises(InvalidInput, match="seed is kept"):
        ws.worklists.generate_worklists(c, "T1", ["rita"])
    ws.close()


def test_a_reader_sees_only_codes_progress_and_status(fresh_db: str, tmp_path: Path) -> None:
    ws, ss, _codes = setup_trial(fresh_db, n_patients=25)
    c, rita, moe = ss["cora"], ss["rita"], ss["moe"]
    ws.worklists.assign_reader(c, "T1", "rita")
    ws.worklists.assign_reader(c, "T1", "remy")
    ws.worklists.generate_worklists(c, "T1")
    mine = ws.worklists.worklist(rita, "T1")
    assert all(set(r.to_dict()) == {"code", "progress", "status"} for r in mine)
    assert [r.progress for r in mine[:2]] == ["1 of 28", "2 of 28"]
    with pytest.raises(PermissionDenied):
        ws.worklists.worklist(rita, "T1", reader="remy")
    assert all(
        set(r.to_dict()) == {"code", "progress", "status", "reader", "campaign"}
        for r in ws.worklists.worklist(moe, "T1")
    )
    full = {r.code: r for r in ws.worklists.worklist(c, "T1", "rita")}
    reread = next(r for r in mine if full[r.code].read_type == "reread")
    primary = next(r for r in mine if full[r.code].read_type == "primary")
    # Nothing the reader can see differs in kind between a re-read and a new case.
    for row in (reread, primary):
        case = ws.reading.open_case(rita, row.code)
        assert {f.name for f in dataclasses.fields(case)} == {"code", "reads", "method", "status"}
        assert list(case.reads) == ["A", "B"]
        view = ws.reading.get_read(rita, case.reads["A"])
        assert (view.patient_code, view.visit, view.read_type) == ("", "", "")
    # Another reader's case does not exist for rita.
    remy_case = ws.worklists.worklist(c, "T1", "remy")[0].code
    with pytest.raises(NotFound):
        ws.reading.open_case(rita, remy_case)
    ws.close()


def test_freeze_rules_after_the_first_signed_read(fresh_db: str, tmp_path: Path) -> None:
    ws, ss, _ = setup_trial(fresh_db, n_patients=3)
    c, rita = ss["cora"], ss["rita"]
    ws.trials.set_trial_setting(c, "T1", "design", "chronological", "protocol v2 before reading")
    ws.trials.set_trial_setting(c, "T1", "design", "paired_blinded", "back to paired")
    ws.worklists.assign_reader(c, "T1", "rita")
    ws.worklists.generate_worklists(c, "T1")
    assert ws.trials.trial_settings(c, "T1").frozen is False
    sign_case(ws, rita, ws.worklists.worklist(rita, "T1")[0].code)
    assert ws.trials.trial_settings(c, "T1").frozen is True
    for name, value in (
        ("design", "single"),
        ("methods", ["larsen1995"]),
        ("visits", ["W0", "W52", "W104"]),
    ):
        with pytest.raises(InvalidInput, match=f"{name} is frozen"):
            ws.trials.set_trial_setting(c, "T1", name, value, "after signing")
    with pytest.raises(InvalidInput, match="seed is kept"):
        ws.worklists.generate_worklists(c, "T1", ["rita"])
    with pytest.raises(InvalidInput, match="reason is required"):
        ws.trials.set_trial_setting(c, "T1", "thresholds", ["sdc80"], "")
    ws.trials.set_trial_setting(c, "T1", "thresholds", ["sdc80", "0.5"], "SAP amendment 1")
    assert ws.trials.trial_settings(c, "T1").protocol.thresholds == ("sdc80", "0.5")
    row = [e for e in ws.oversight.audit_trail(c) if e.action == "trial.setting"][-1]
    assert row.reason == "SAP amendment 1"
    assert json.loads(row.old) == {"thresholds": ["sdc95", "sdc80", "0", "0.5"]}
    assert json.loads(row.new) == {"thresholds": ["sdc80", "0.5"]}
    with pytest.raises(InvalidInput, match="sdc_level"):
        ws.trials.set_trial_setting(c, "T1", "sdc_level", 90, "typo")
    assert ws.verify().ok
    ws.close()


def test_a_new_campaign_reads_new_visits_with_the_earlier_ones(
    fresh_db: str, tmp_path: Path
) -> None:
    ws, ss, _codes = setup_trial(fresh_db, n_patients=4)
    c = ss["cora"]
    ws.worklists.assign_reader(c, "T1", "rita")
    ws.worklists.generate_worklists(c, "T1")
    assert ws.worklists.add_campaign(c, "T1", "extension", [("W104", 104.0)]) == 2
    assert ws.worklists.generate_worklists(c, "T1", campaign=2) == {"rita": 4}
    first = ws.worklists.worklist(c, "T1", "rita", campaign=1)
    second = ws.worklists.worklist(c, "T1", "rita", campaign=2)
    assert all(sorted(r.visits) == ["W0", "W52"] for r in first)
    assert all(sorted(r.visits) == ["W0", "W104", "W52"] for r in second)
    assert {r.campaign for r in second} == {2}
    assert not {r.code for r in first} & {r.code for r in second}
    ws.close()


def test_single_and_chronological_designs(fresh_db: str, tmp_path: Path) -> None:
    ws, ss, _ = setup_trial(fresh_db, n_patients=5, design="single", visits=("W0", "W24", "W52"))
    c = ss["cora"]
    ws.worklists.assign_reader(c, "T1", "rita")
    ws.trials.set_trial_setting(c, "T1", "reread_share", 0, "no re-reads in this pilot")
    ws.worklists.generate_worklists(c, "T1")
    rows = ws.worklists.worklist(c, "T1", "rita")
    assert len(rows) == 15 and all(len(r.visits) == 1 for r in rows)
    ws.trials.set_trial_setting(c, "T1", "design", "chronological", "switch before reading")
    ws.worklists.assign_reader(c, "T1", "remy")
    ws.worklists.generate_worklists(c, "T1", ["remy"])
    assert all(r.visits == ("W0", "W24", "W52") for r in ws.worklists.worklist(c, "T1", "remy"))
    ws.close()


def test_protocol_files_in_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text(
        'code = "RA-1"\nname = "RA one"\ndesign = "paired_blinded"\n'
        'visits = [{label = "W0", week = 0}, {label = "W52", week = 52}]\n'
        'reread_share = 0.15\nthresholds = ["sdc95", "0.5"]\n',
        encoding="utf-8",
    )
    p = protocol_mod.load(toml)
    assert p.visits[1].week == 52 and p.reread_share == 0.15
    js = tmp_path / "p.json"
    js.write_text(json.dumps(p.to_dict()), encoding="utf-8")
    assert protocol_mod.load(js) == p
    bad = tmp_path / "bad.toml"
    bad.write_text('code = "RA-1"\nfinal_rule = "coin_toss"\n', encoding="utf-8")
    with pytest.raises(protocol_mod.ProtocolError, match="bad.toml: final_rule: one of"):
        protocol_mod.load(bad)
    bad.write_text('code = "RA-1"\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(protocol_mod.ProtocolError, match="unknown setting.*colour"):
        protocol_mod.load(bad)


def test_cli_trial_and_worklist_commands(
    fresh_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = fresh_db
    ws, _ss, codes = setup_trial(db, n_patients=6)
    ws.close()

    def cli(*args: str, user: str = "cora") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(PW[user] + "\n"))
        direct = ["--maintenance"] if db.startswith("postgresql") else []  # the server host's
        rc = main([*args, "--db", db, "--user", user, "--password-stdin", *direct])
        out, err = capsys.readouterr()
        return rc, out, err

    proto = tmp_path / "p2.toml"
    proto.write_text('code = "T2"\nvisits = ["W0", "W52"]\ndesign = "single"\n', encoding="utf-8")
    assert cli("trial", "create", "--protocol", str(proto))[0] == 0
    rc, out, _ = cli("trial", "show", "T2", "--format", "json")
    assert json.loads(out)["design"] == "single"
    rc, out, err = cli("trial", "set", "T2", "reread_share", "0.2", "--reason", "SAP")
    assert rc == 0, err
    with pytest.raises(SystemExit) as info:  # argparse: --reason is required
        cli("trial", "set", "T2", "reread_share", "0.2")
    assert info.value.code == 2
    assert cli("trial", "assign", "T1", "rita")[0] == 0
    rc, out, err = cli("worklist", "generate", "--trial", "T1")
    assert rc == 0 and "rita: 7 case(s)" in out, err
    rc, out, _ = cli("worklist", "show", "--trial", "T1", "--reader", "rita", "--format", "json")
    assert {r["patient"] for r in json.loads(out)} == set(codes)
    rc, out, _ = cli("worklist", "show", "--trial", "T1", user="rita")
    assert "1 of 7" in out and "patient" not in out and "W0" not in out
    for code in codes:
        assert code not in out
    rc, out, _ = cli("worklist", "verify", "--trial", "T1")
    assert rc == 0 and "regenerates exactly" in out
