"""The analysis result as text for people (``scorer analyze --format text``).

Estimates print with six decimals and confidence limits with four, so the text can be checked
against published values as easily as the JSON.
"""

from __future__ import annotations

from typing import Any

from scorer.stats.icc import ICC_FORMS


def _f(x: Any, nd: int = 6) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _icc_lines(
    title: str, table: dict[str, Any] | None, anova: dict[str, Any] | None, note: str | None = None
) -> list[str]:
    if not table:
        why = (note or "").split("not estimable: ", 1)[-1] or "needs 2 readers"
        return [f"{title}: not estimable: {why}"]
    first = next(iter(table.values()))
    lines = [f"{title} (n = {first['n']} targets, k = {first['k']} readers)"]
    if anova:
        lines.append(
            f"  mean squares: BMS {_f(anova['bms'])}  JMS {_f(anova['jms'])}  "
            f"EMS {_f(anova['ems'])}  WMS {_f(anova['wms'])}"
        )
    lines.append(f"  {'Shrout-Fleiss':<14} {'McGraw-Wong':<12} {'ICC':>9}   95% CI")
    for form in ICC_FORMS:
        r = table.get(form)
        if r is None:
            continue
        lines.append(
            f"  {form:<14} {r['mcgraw_wong']:<12} {_f(r['value']):>9}   "
            f"{_f(r['ci_low'], 4)} to {_f(r['ci_high'], 4)}"
        )
    return lines


def _totals(res: dict[str, Any]) -> list[str]:
    out = ["Status totals per visit and reader: mean (SD), n"]
    for visit, info in res["totals"].items():
        cells = [
            f"{rd} {_f(s.get('mean'), 2)} ({_f(s.get('sd'), 2)}), n = {s.get('n', 0)}"
            for rd, s in info["readers"].items()
        ]
        date = f" [{info['date']}]" if info.get("date") else ""
        out.append(f"  {visit}{date}: " + "; ".join(cells))
    return out


def _change(res: dict[str, Any]) -> list[str]:
    ch = res["change"]
    out = [f"Change {res['from']} -> {res['to']}: mean (SD), median, n"]
    rows = [*ch["readers"].items(), ("reader mean", ch["reader_mean"])]
    for rd, s in rows:
        out.append(
            f"  {rd}: {_f(s.get('mean'))} ({_f(s.get('sd'))}), median {_f(s.get('median'), 2)}, "
            f"n = {s.get('n', 0)}"
        )
    out.append("")
    out += _icc_lines(
        "Change ICC, all readers",
        res["icc"]["change"],
        res["icc"].get("change_anova"),
        res["icc"].get("change_note"),
    )
    out.append("")
    sd = res.get("sdc")
    if sd:
        out.append(
            f"SDC{sd['level']} = {_f(sd['value'])} (z = {sd['z']}, k = {sd['k']} readers "
            f"averaged, SD of differences {_f(sd['sd_diff'])}, n = {sd['n']})"
        )
        if sd.get("readers"):
            out.append(
                f"  from readers {', '.join(sd['readers'])} on the n = {sd['n']} patients all "
                "of them read (the largest complete block)"
            )
        for row in sd.get("table", []):
            who = "reader mean" if row["k"] > 1 else "single reader"
            out.append(f"  SDC{row['level']} with k = {row['k']} ({who}): {_f(row['value'])}")
        if sd.get("pairwise"):
            out.append("  Pairwise SDC (k = 2, each pair on the patients both read)")
            out.append(
                f"    {'A':<10} {'B':<10} {'n':>5} {'SD diff':>10} {'SDC95':>10} {'SDC80':>10}"
            )
            for p in sd["pairwise"]:
                out.append(
                    f"    {p['reader_a']:<10} {p['reader_b']:<10} {p['n']:>5} "
                    f"{_f(p['sd_diff']):>10} {_f(p['sdc95']):>10} {_f(p['sdc80']):>10}"
                )
    else:
        out.append(res.get("sdc_note") or "No SDC: not estimable")
    return out


def _pairwise_icc(res: dict[str, Any]) -> list[str]:
    rows = res["icc"].get("pairwise") or []
    out = [
        "Pairwise ICC (each pair on the targets both read; n per row)",
        f"  {'measure':<8} {'visit':<8} {'A':<10} {'B':<10} {'n':>5} {'ICC(A,1)':>9} "
        f"{'95% CI':<17} {'ICC(C,1)':>9} {'ICC(1)':>9}",
    ]
    for p in rows:
        visit = (p["visit"] or "pooled") if p["measure"] == "status" else "-"
        head = (
            f"  {p['measure']:<8} {visit:<8} "
            f"{p['reader_a']:<10} {p['reader_b']:<10} {p['n']:>5} "
        )
        table = p.get("icc")
        if not table:
            why = (p.get("note") or "").split("not estimable: ", 1)[-1]
            out.append(head + "not estimable: " + why)
            continue
        a1, c1, o1 = table["ICC(2,1)"], table["ICC(3,1)"], table["ICC(1,1)"]
        ci = f"{_f(a1['ci_low'], 4)} to {_f(a1['ci_high'], 4)}"
        out.append(
            head + f"{_f(a1['value']):>9} {ci:<17} {_f(c1['value']):>9} {_f(o1['value']):>9}"
        )
    return out


def _bland_altman(res: dict[str, Any]) -> list[str]:
    out = [
        "Bland-Altman (difference = reader A - reader B; limits = mean +/- 1.96 SD)",
        f"  {'measure':<8} {'A':<10} {'B':<10} {'n':>5} {'mean diff':>10} {'SD diff':>10}"
        "   limits of agreement",
    ]
    for b in res["bland_altman"]:
        out.append(
            f"  {b['measure']:<8} {b['reader_a']:<10} {b['reader_b']:<10} {b['n']:>5} "
            f"{_f(b['mean_diff']):>10} {_f(b['sd_diff']):>10}   "
            f"{_f(b['loa_low'], 4)} to {_f(b['loa_high'], 4)}"
        )
    return out


def _progression(res: dict[str, Any]) -> list[str]:
    prog = res["progression"]
    out = [
        f"Progression of the reader-mean change (SDC with k = {prog['sdc_k_reader_mean']}; "
        "per reader with k = 1)"
    ]
    for t in prog["thresholds"]:
        cut = f" [cutoff {_f(t['cutoff'])}]" if t.get("cutoff") is not None else ""
        if t.get("n_progressors") is None:
            out.append(f"  {t['threshold']}{cut}: not available")
            continue
        line = f"  {t['threshold']}{cut}: {t['n_progressors']} of {t['n']} ({_f(t['pct'], 1)}%)"
        if t.get("per_reader"):
            per = ", ".join(
                f"{rd} {v['n_progressors']} of {v['n']}" for rd, v in t["per_reader"].items() if v
            )
            line += f"; per reader: {per}"
        out.append(line)
    return out


def _kappa(res: dict[str, Any]) -> list[str]:
    out = [
        "Weighted kappa per area (over the method's full grade range)",
        f"  {'A':<8} {'B':<8} {'area':<20} {'n':>5} {'linear':>7} {'quadr.':>7} "
        f"{'%exact':>7} {'%+-1':>7}",
    ]
    for k in res["kappa"]:
        area = f"{k['region']} {k['joint']} {k['feature']}"
        est = k.get("estimable")
        lin = _f(k.get("linear"), 3) if est else "n.e."
        quad = _f(k.get("quadratic"), 3) if est else "n.e."
        out.append(
            f"  {k['reader_a']:<8} {k['reader_b']:<8} {area:<20} {k['n']:>5} {lin:>7} {quad:>7} "
            f"{_f(k.get('pct_exact'), 1):>7} {_f(k.get('pct_within_one'), 1):>7}"
        )
    out.append("  n.e. = not estimable: expected agreement is 1 (one grade throughout)")
    return out


def format_analysis(res: dict[str, Any]) -> str:
    """A readable report of every figure in the analysis, each with its n."""
    out = [
        f"scorer analyze - method {res['method']} ({res['method_name']})",
        f"Patients: {res['n_patients']}   Readers: {', '.join(res['readers'])}   "
        f"Visits: {', '.join(res['visits'])}",
        f"Rules: {res['rules']['description']}",
        "",
        *_totals(res),
        "",
        *_icc_lines(
            "Status ICC, all readers, all (patient, visit) targets",
            res["icc"]["status"],
            res["icc"].get("status_anova"),
            res["icc"].get("status_note"),
        ),
    ]
    if len(res["visits"]) > 1:
        why = res["icc"].get("status_by_visit_notes") or {}
        for visit, table in res["icc"]["status_by_visit"].items():
            title = f"Status ICC at {visit}, all readers"
            out += ["", *_icc_lines(title, table, None, why.get(visit))]
    if res.get("change"):
        out += ["", *_change(res)]
    if res["icc"].get("pairwise"):
        out += ["", *_pairwise_icc(res)]
    if res.get("bland_altman"):
        out += ["", *_bland_altman(res)]
    if res.get("progression"):
        out += ["", *_progression(res)]
    if res.get("kappa"):
        out += ["", *_kappa(res)]
    if res.get("notes"):
        out += ["", "Notes", *[f"  - {n}" for n in res["notes"]]]
    return "\n".join(out) + "\n"
