"""neurosbi's NPE against sbi's NPE (MAF, 5 transforms, 50 hidden units) on the same MPR bank.

Both train on the same training rows and are scored on the same held-out rows (negative log-likelihood
of the true θ under q(θ | x), in the original parameter space). Wall time to the end of training.

    neurosbi simulate montbrio --num 20000 --out /tmp/bank.zarr --seed 1
    pip install torch==2.13.0 sbi
    python benchmarks/npe_vs_sbi.py --bank /tmp/bank.zarr > benchmarks/results/npe_vs_sbi.json
"""

import argparse
import contextlib
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bank", required=True)
    p.add_argument("--num", type=int, default=None, help="use the first NUM simulations of the bank")
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--skip-sbi", action="store_true")
    a = p.parse_args()
    bank, meta = neurosbi.load_bank(a.bank)
    model = neurosbi.models.get(meta["model"], **meta["model_config"])
    ok = bank.valid
    theta, x = bank.theta[ok], bank.x[ok]
    n = len(theta) if a.num is None else min(a.num, len(theta))
    theta, x = theta[:n], x[:n]
    tr, te = slice(0, n - a.test), slice(n - a.test, n)
    result = {"benchmark": "npe_vs_sbi", "machine": describe(), "bank": meta["model_config"],
              "num_train": n - a.test, "num_test": a.test}

    t0 = time.perf_counter()
    post, hist = neurosbi.fit_npe(theta[tr], x[tr], model.prior, key=jax.random.key(0), progress=False,
                                  param_names=model.param_names)
    ours_s = time.perf_counter() - t0
    nll = -float(jnp.mean(post.log_prob(jnp.asarray(theta[te]), jnp.asarray(x[te]))))
    result["neurosbi"] = {"train_s": ours_s, "epochs": hist.epochs, "heldout_nll": nll,
                          "config": post.config.__dict__}

    if not a.skip_sbi:
        import sbi
        import torch
        from sbi.inference import NPE
        from sbi.utils import BoxUniform

        torch.manual_seed(0)
        low, high = np.asarray(model.prior.minval), np.asarray(model.prior.maxval)
        prior = BoxUniform(torch.tensor(low), torch.tensor(high))
        inference = NPE(prior=prior, density_estimator="maf")  # sbi default MAF: 5 transforms, 50 hidden
        t0 = time.perf_counter()
        inference.append_simulations(torch.tensor(theta[tr]), torch.tensor(x[tr]))
        with contextlib.redirect_stdout(sys.stderr):  # sbi prints its progress on stdout
            estimator = inference.train()
        sbi_s = time.perf_counter() - t0
        with torch.no_grad():
            lp = estimator.log_prob(torch.tensor(theta[te]).unsqueeze(0), condition=torch.tensor(x[te]))
        result["sbi"] = {"version": sbi.__version__, "torch": torch.__version__, "train_s": sbi_s,
                         "epochs": inference.summary["epochs_trained"][-1], "heldout_nll": -float(lp.mean())}
        result["speedup"] = sbi_s / ours_s
    result["goal"] = {"speedup": 3.0, "nll": "ours <= sbi"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
