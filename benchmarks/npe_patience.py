"""NPE training time against held-out NLL for several early-stopping settings, on one Zarr bank.

    neurosbi simulate montbrio --num 100000 --noise 0 --out /tmp/bank_det.zarr --seed 1
    python benchmarks/npe_patience.py --bank /tmp/bank_det.zarr 256:1e-3:20:5 256:1e-3:30:10 \
        > benchmarks/results/npe_patience.json

Each setting is batch:learning_rate:patience:lr_patience; the last 2,000 simulations are held out.
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
from neurosbi.inference import NPEConfig  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bank", required=True)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("settings", nargs="+")
    a = p.parse_args()
    bank, meta = neurosbi.load_bank(a.bank)
    model = neurosbi.models.get(meta["model"], **meta["model_config"])
    th, x, nt = bank.theta, bank.x, a.test
    runs = []
    for setting in a.settings:
        bs, lr, pat, lrp = setting.split(":")
        cfg = NPEConfig(batch_size=int(bs), learning_rate=float(lr), patience=int(pat), lr_patience=int(lrp))
        t0 = time.perf_counter()
        post, hist = neurosbi.fit_npe(th[:-nt], x[:-nt], model.prior, key=jax.random.key(0), config=cfg,
                                      valid=bank.valid[:-nt], progress=False)
        train_s = time.perf_counter() - t0
        lp = np.asarray(post.log_prob(jnp.asarray(th[-nt:]), jnp.asarray(x[-nt:])))
        runs.append({"batch": int(bs), "lr": float(lr), "patience": int(pat), "lr_patience": int(lrp),
                     "train_s": train_s, "epochs": hist.epochs, "heldout_nll": float(-lp[np.isfinite(lp)].mean())})
        print(runs[-1], file=sys.stderr)
    print(json.dumps({"benchmark": "npe_patience", "machine": describe(), "bank": meta["model_config"],
                      "num_train": len(th) - nt, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
