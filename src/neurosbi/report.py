"""A self-contained HTML report: the figures (embedded as base64 PNG) next to the numbers."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


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


def write_report(out: Path, metrics: dict, figures: list[str]) -> Path:
    """Write ``out/report.html`` from ``metrics`` and the PNG files named in ``figures``."""
    out = Path(out)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>neurosbi report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>",
        f"<h1>neurosbi: {html.escape(metrics['model'])}</h1>",
        f"<p>{metrics['num_simulations']} simulations ({metrics['num_invalid_simulations']} invalid, "
        f"{metrics.get('num_screened_simulations', 0)} of them screened out by a pilot run), "
        f"total {metrics['timings']['total_s']:.1f} s. Parameter RMSE of the posterior mean: "
        f"{metrics['rmse_posterior_mean']:.4g}. Largest coverage error: {metrics['coverage']['max_error']:.3f}"
        + _temperature(metrics.get("temperature")) + ".</p>",
        _table(metrics),
    ]
    parts += [_img(out / f) for f in figures if (out / f).exists()]
    parts.append("<h2>metrics.json</h2><pre>" + html.escape(json.dumps(metrics, indent=2)) + "</pre></body></html>")
    path = out / "report.html"
    path.write_text("".join(parts))
    return path
