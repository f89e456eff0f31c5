"""A self-contained HTML report: the figures (embedded as base64 PNG) next to the numbers."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

_HEAD = ("<!doctype html><html><head><meta charset='utf-8'><title>neurosbi report</title>"
         "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}"
         "pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>")


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{path.stem}"><figcaption>{path.name}</figcaption></figure>'


def _table(metrics: dict) -> str:
    names = metrics["param_names"]
    rows = ["<tr><th>parameter</th><th>truth</th><th>posterior mean</th><th>posterior std</th><th>z-score</th><th>shrinkage</th></tr>"]
    for n in names:
        truth = metrics["true_params"][n] if metrics.get("true_params") else float("nan")
        rows.append(
            f"<tr><td>{html.escape(n)}</td><td>{truth:.4g}</td><td>{metrics['posterior_mean'][n]:.4g}</td>"
            f"<td>{metrics['posterior_std'][n]:.4g}</td><td>{metrics['z_score'][n]:.3g}</td>"
            f"<td>{metrics['shrinkage'][n]:.3f}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _temperature(t) -> str:
    if not t:
        return ""
    return (f" (posterior temperature {t['temperature']:.3f}, fitted on {t['num_calibration']} other held-out "
            f"simulations: their coverage error {t['calibration_error_at_1']:.3f} at 1, "
            f"{t['calibration_error']:.3f} after)")


def _misspecification(record: dict | None) -> str:
    """The verdict, each test's p-value and the per-feature table."""
    if not record:
        return ""
    if "skipped" in record:
        return f"<h2>Model check</h2><p>skipped: {html.escape(record['skipped'])}</p>"
    bad = record["verdict"] == "misspecified"
    color = "#b00" if bad else "#070"
    head = (f"<h2>Model check</h2><p style='color:{color};font-weight:bold'>"
            + ("No parameter of the model explains this observation." if bad else
               "The observation is consistent with the model's simulations.")
            + f"</p><p>Level {record['alpha']}; a test rejects below {record['bonferroni_threshold']:.3g} "
            f"(Bonferroni over {len(record['tests'])} tests).</p>")
    tests = ["<tr><th>test</th><th>space</th><th>statistic</th><th>p-value</th><th>null size</th></tr>"]
    tests += [f"<tr><td>{t['name']}</td><td>{html.escape(t['space'])}</td><td>{t['statistic']:.4g}</td>"
              f"<td>{t['pvalue']:.3g}</td><td>{t['num_null']}</td></tr>" for t in record["tests"]]
    feats = ["<tr><th>feature</th><th>observed</th><th>z-score</th><th>P(misspecified)</th></tr>"]
    for f in record["features"]:
        p = f.get("p_misspecified", float("nan"))
        style = " style='color:#b00;font-weight:bold'" if p > record["flag_threshold"] else ""
        feats.append(f"<tr{style}><td>{html.escape(f['name'])}</td><td>{f['observed']:.4g}</td>"
                     f"<td>{f['zscore']:.2f}</td><td>{p:.2f}</td></tr>")
    return head + "<table>" + "".join(tests) + "</table><br><table>" + "".join(feats) + "</table>"


def write_check_report(out: Path, record: dict) -> Path:
    """``out/report.html`` for ``neurosbi check``: the verdict, tables and ``misspecification.png``."""
    out = Path(out)
    parts = [_HEAD, f"<h1>neurosbi check: {html.escape(record['model'])}</h1>", _misspecification(record)]
    if (out / "misspecification.png").exists():
        parts.append(_img(out / "misspecification.png"))
    parts.append("<h2>check.json</h2><pre>" + html.escape(json.dumps(record, indent=2)) + "</pre></body></html>")
    path = out / "report.html"
    path.write_text("".join(parts))
    return path


def write_report(out: Path, metrics: dict, figures: list[str]) -> Path:
    """Write ``out/report.html`` from ``metrics`` and the PNG files named in ``figures``."""
    out = Path(out)
    parts = [
        _HEAD,
        f"<h1>neurosbi: {html.escape(metrics['model'])}</h1>",
        f"<p>{metrics['num_simulations']} simulations ({metrics['num_invalid_simulations']} invalid, "
        f"{metrics.get('num_screened_simulations', 0)} of them screened out by a pilot run), "
        f"total {metrics['timings']['total_s']:.1f} s. Parameter RMSE of the posterior mean: "
        f"{metrics['rmse_posterior_mean']:.4g}. Largest coverage error: {metrics['coverage']['max_error']:.3f}"
        + _temperature(metrics.get("temperature")) + ".</p>",
        _table(metrics),
        _misspecification(metrics.get("misspecification")),
    ]
    parts += [_img(out / f) for f in figures if (out / f).exists()]
    parts.append("<h2>metrics.json</h2><pre>" + html.escape(json.dumps(metrics, indent=2)) + "</pre></body></html>")
    path = out / "report.html"
    path.write_text("".join(parts))
    return path
