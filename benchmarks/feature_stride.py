"""What reading the MPR features every 25 ms (the default) instead of every 1 ms (published) changes.

1. Features: the same simulations (same noise, so the same trajectories) summarised both ways, for
   N prior draws; per feature, the difference in units of that feature's spread over the prior
   (median and 95th percentile over draws), and how often the peak count agrees.
2. Inference: `neurosbi infer` on the stochastic case with each stride (same seeds): parameter RMSE
   of the posterior mean, posterior std and total time.

    python benchmarks/feature_stride.py [--num 2000] [--infer-sims 10000] [--seeds 0 1] \
        > benchmarks/results/feature_stride.json
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

import neurosbi  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=2000)
    p.add_argument("--infer-sims", type=int, default=10_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    a = p.parse_args()
    fine = neurosbi.models.get("montbrio", feature_stride=1)
    coarse = neurosbi.models.get("montbrio")
    theta = np.asarray(coarse.prior.sample(jax.random.key(0), (a.num,)))
    x1 = neurosbi.simulate(fine, a.num, jax.random.key(1), theta=theta, chunk_size=256, progress=False).x
    x25 = neurosbi.simulate(coarse, a.num, jax.random.key(1), theta=theta, chunk_size=256, progress=False).x
    ok = np.isfinite(x1).all(1) & np.isfinite(x25).all(1)
    spread = x1[ok].std(0)
    rel = np.abs(x25[ok] - x1[ok]) / spread
    names = list(coarse.feature_names)
    count_cols = [i for i, n in enumerate(names) if n.endswith("peak_count")]
    features = {
        "num": a.num, "num_compared": int(ok.sum()),
        "relative_difference_median": dict(zip(names, np.median(rel, 0).tolist())),
        "relative_difference_p95": dict(zip(names, np.percentile(rel, 95, 0).tolist())),
        "peak_count_agreement": {names[i]: float(np.mean(x25[ok, i] == x1[ok, i])) for i in count_cols},
    }
    print(f"features: worst median {rel.mean(0).max():.3f}", file=sys.stderr)

    runs = {}
    for label, model in (("stride_1", fine), ("stride_25", coarse)):
        runs[label] = []
        for seed in a.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                m = neurosbi.infer(model, out=tmp, num_simulations=a.infer_sims, seed=seed, progress=False,
                                   chunk_size=256 if model is fine else 1024)
            runs[label].append({"seed": seed, "rmse_posterior_mean": m["rmse_posterior_mean"],
                                "posterior_std": m["posterior_std"], "posterior_mean": m["posterior_mean"],
                                "coverage_max_error": m["coverage"]["max_error"], "total_s": m["timings"]["total_s"]})
            print(f"{label} seed {seed}: rmse {m['rmse_posterior_mean']:.4f}", file=sys.stderr)
    inference = {label: {"runs": r, "rmse_mean": float(np.mean([x["rmse_posterior_mean"] for x in r]))}
                 for label, r in runs.items()}
    print(json.dumps({"benchmark": "feature_stride", "machine": describe(), "features": features,
                      "inference": inference, "infer_simulations": a.infer_sims}, indent=2))


if __name__ == "__main__":
    main()
