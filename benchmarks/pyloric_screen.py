"""How well a short pilot run tells which pyloric circuits will give a rhythm (a screen before the
full 11 s simulation).

Most prior draws give no triphasic rhythm (NaN features). If a short run (1 s burn-in + a few
seconds) already shows it, the full run is needed only for the draws that pass. Same parameters and
same per-simulation keys (so the same noise over the shared first seconds) for the full model and for
``Pyloric(duration=D)``; half prior draws, half draws near the example circuit (the default truth
plus 10 % of the prior width, Gaussian), where most circuits are pyloric. Reports, per screen
duration, how many pass (cost) and how many of the full run's valid circuits pass (recall).

    python benchmarks/pyloric_screen.py [--num 1024] > benchmarks/results/pyloric_screen.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402
from _pyloric import near_example  # noqa: E402

setup_devices()

import jax  # noqa: E402

import neurosbi  # noqa: E402
from neurosbi.models import Pyloric  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=1024)
    p.add_argument("--durations", type=float, nargs="+", default=[3000.0, 4000.0])
    a = p.parse_args()
    n = a.num
    full = Pyloric()
    prior_th = np.asarray(full.prior.sample(jax.random.key(42), (n // 2,)))
    theta = np.concatenate([prior_th, near_example(full, n - n // 2, jax.random.key(43))]).astype(np.float32)
    half = np.arange(n) < n // 2

    def run(model):
        t0 = time.perf_counter()
        bank = neurosbi.simulate(model, n, jax.random.key(7), theta=theta, chunk_size=512, slice_size=256,
                                 progress=False, screen=False)
        return bank.valid, time.perf_counter() - t0

    valid, full_s = run(full)
    out = {"benchmark": "pyloric_screen", "machine": describe(), "num": n,
           "full": {"duration_ms": full.duration, "valid_prior": int(valid[half].sum()),
                    "valid_near": int(valid[~half].sum()), "wall_s_with_compile": full_s},
           "screens": []}
    for d in a.durations:
        passed, s = run(Pyloric(duration=d))
        out["screens"].append({
            "duration_ms": d, "cost_relative_to_full": d / full.duration, "wall_s_with_compile": s,
            "pass_prior": int(passed[half].sum()), "pass_near": int(passed[~half].sum()),
            "valid_and_passed_prior": int((passed & valid)[half].sum()),
            "valid_and_passed_near": int((passed & valid)[~half].sum()),
            "recall_near": float((passed & valid)[~half].sum() / max(valid[~half].sum(), 1)),
        })
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
