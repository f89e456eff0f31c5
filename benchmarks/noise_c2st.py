"""Two-point (simplified weak Euler) against Gaussian (published Euler–Maruyama) noise in the MPR model.

1. Features: a classifier two-sample test between the 34 features of N simulations with each scheme at
   the published truth (σ = 0.1), next to the same test between two independent two-point sets (the
   level a test reaches on equal distributions with this N).
2. Posteriors: NPE trained on N prior simulations with each scheme (and on a second two-point bank,
   again as the equal-distribution reference), all evaluated on one observation simulated with the
   published Gaussian scheme; posterior means and stds, and C2ST between the posterior samples.

    python benchmarks/noise_c2st.py [--num 10000] > benchmarks/results/noise_c2st.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

import neurosbi  # noqa: E402
from neurosbi.diagnostics import c2st  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=10_000)
    p.add_argument("--posterior-samples", type=int, default=5_000)
    a = p.parse_args()
    t0 = time.perf_counter()
    models = {n: neurosbi.models.get("montbrio", noise=n) for n in ("two-point", "gaussian")}
    truth = models["two-point"].default_truth

    feats = {}
    for name, seed in (("two-point", 1), ("gaussian", 2), ("two-point-again", 3)):
        model = models[name.replace("-again", "")]
        bank = neurosbi.simulate(model, a.num, jax.random.key(seed), theta=np.tile(truth, (a.num, 1)), progress=False)
        feats[name] = bank.x[bank.valid]
    features = {
        "c2st_two_point_vs_gaussian": c2st(feats["two-point"], feats["gaussian"], jax.random.key(10)),
        "c2st_two_point_vs_two_point": c2st(feats["two-point"], feats["two-point-again"], jax.random.key(11)),
        "num_each": a.num,
    }
    print(f"features: {features}", file=sys.stderr)

    obs_model = models["gaussian"]
    traces = neurosbi.models.simulate_traces(obs_model, jax.random.key(99), jnp.asarray(truth[None], jnp.float32))
    x_o = np.asarray(obs_model.features(traces))[0]
    samples, summary = {}, {}
    for name, seed in (("two-point", 4), ("gaussian", 5), ("two-point-again", 6)):
        model = models[name.replace("-again", "")]
        bank = neurosbi.simulate(model, a.num, jax.random.key(seed), progress=False)
        post, hist = neurosbi.fit_npe(bank.theta, bank.x, model.prior, key=jax.random.key(seed), valid=bank.valid,
                                      param_names=model.param_names, progress=False)
        s = np.asarray(post.sample(jax.random.key(7), a.posterior_samples, jnp.asarray(x_o)))
        samples[name] = s
        summary[name] = {"mean": s.mean(0).tolist(), "std": s.std(0).tolist(), "epochs": hist.epochs}
        print(f"posterior {name}: {summary[name]}", file=sys.stderr)
    posteriors = {
        "param_names": list(models["two-point"].param_names),
        "truth": truth.tolist(),
        "per_bank": summary,
        "c2st_two_point_vs_gaussian": c2st(samples["two-point"], samples["gaussian"], jax.random.key(12)),
        "c2st_two_point_vs_two_point": c2st(samples["two-point"], samples["two-point-again"], jax.random.key(13)),
        "num_simulations_each": a.num,
    }
    print(json.dumps({"benchmark": "noise_c2st", "machine": describe(), "features": features,
                      "posteriors": posteriors, "total_s": time.perf_counter() - t0}, indent=2))


if __name__ == "__main__":
    main()
