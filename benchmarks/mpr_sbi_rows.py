"""The SBI rows of Baldy et al. (2024) tables, reproduced with `neurosbi infer` (reference section 2.6).

Cases: deterministic (σ = 0, r and v), stochastic (σ = 0.1, r and v), missing data (σ = 0.1, v only),
each with the 17 published features per variable; the ``*_autocorr`` cases append the windows'
autocorrelations at 0.05-1.6 s (``Montbrio(autocorr_lags=AUTOCORR_LAGS)``, CLI ``--autocorr``).
Each case is run for several seeds; parameter RMSE of the posterior mean against the truth and the
total time (simulate + train + sample + diagnostics) are reported as mean and std.

    python benchmarks/mpr_sbi_rows.py --num-simulations 10000 --seeds 0 1 2 > benchmarks/results/mpr_sbi_rows.json
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

import neurosbi  # noqa: E402
from neurosbi.models.montbrio import AUTOCORR_LAGS  # noqa: E402

CASES = {
    "deterministic": ({"noise_sigma": 0.0, "observe": "rv"}, {"rmse": 0.0133, "seconds": 5781}),
    "stochastic": ({"noise_sigma": 0.1, "observe": "rv"}, {"rmse": 0.053, "seconds": 6457}),
    "missing": ({"noise_sigma": 0.1, "observe": "v"}, {"rmse": 0.427, "seconds": 5254}),
}
for _case, (_options, _published) in list(CASES.items()):
    CASES[f"{_case}_autocorr"] = ({**_options, "autocorr_lags": AUTOCORR_LAGS}, _published)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num-simulations", type=int, default=10_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    a = p.parse_args()
    out = {"benchmark": "mpr_sbi_rows", "machine": describe(), "num_simulations": a.num_simulations,
           "published_hardware": "Intel Core i7-7700 3.6 GHz, 8 GB; sbi 0.21, 100k simulations", "cases": {}}
    for case in a.cases:
        options, published = CASES[case]
        model = neurosbi.models.get("montbrio", **options)
        runs = []
        for seed in a.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                m = neurosbi.infer(model, out=tmp, num_simulations=a.num_simulations, seed=seed, progress=False)
            runs.append({"seed": seed, "rmse_posterior_mean": m["rmse_posterior_mean"], "z_score": m["z_score"],
                         "shrinkage": m["shrinkage"], "coverage_max_error": m["coverage"]["max_error"],
                         "timings": m["timings"], "num_invalid_simulations": m["num_invalid_simulations"]})
            print(f"{case} seed {seed}: rmse {m['rmse_posterior_mean']:.4f} total {m['timings']['total_s']:.0f} s",
                  file=sys.stderr)
        rmse = np.array([r["rmse_posterior_mean"] for r in runs])
        total = np.array([r["timings"]["total_s"] for r in runs])
        out["cases"][case] = {
            "options": options, "runs": runs,
            "rmse_mean": float(rmse.mean()), "rmse_std": float(rmse.std()),
            "total_s_mean": float(total.mean()), "total_s_std": float(total.std()),
            "published_sbi": published,
            "goal_met": {"rmse": bool(rmse.mean() <= published["rmse"]), "time_under_5_min": bool(total.max() <= 300)},
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
