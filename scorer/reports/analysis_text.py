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


def _icc_lines(title: str, table: dict[str, Any] | None, anova: dict[str, Any] | None) -> list[str]:
    if not table:
        return [f"{title}: not estimable (needs 2 readers and 2 targets read by all)"]
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
    out += _icc_lines("Change ICC", res["icc"]["change"], res["icc"].get("change_anova"))
    out.append("")
    sd = res.get("sdc")
    if sd:
        out.append(
            f"SDC{sd['level']} = {_f(sd['value'])} (z = {sd['z']}, k = {sd['k']} readers "
            f"averaged, SD of differences {_f(sd['sd_diff'])}, n = {sd['n']})"
        )
        for row in sd.get("table", []):
            who = "reader mean" if row["k"] > 1 else "single reader"
            out.append(f"  SDC{row['level']} with k = {row['k']} ({who}): {_f(row['value'])}")
    else:
        out.append("SDC: not estimable")
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
            "Status ICC, all (patient, visit) targets",
            res["icc"]["status"],
            res["icc"].get("status_anova"),
        ),
    ]
    if len(res["visits"]) > 1:
        for visit, table in res["icc"]["status_by_visit"].items():
            out += ["", *_icc_lines(f"Status ICC at {visit}", table, None)]
    if res.get("change"):
        out += ["", *_change(res)]
    if res.get("bland_altman"):
        out += ["", *_bland_altman(res)]
    if res.get("progression"):
        out += ["", *_progression(res)]
    if res.get("kappa"):
        out += ["", *_kappa(res)]
    if res.get("notes"):
        out += ["", "Notes", *[f"  - {n}" for n in res["notes"]]]
    return "\n".join(out) + "\n"
