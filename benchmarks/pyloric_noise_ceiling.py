"""How often does a pyloric circuit that matched the preparation once match it again? The ceiling the
current noise puts on "share of posterior samples whose rhythm is close to the observation".

Circuits near the example (its parameters + ``--spread`` of the prior width, Gaussian, clipped) are
simulated twice over the full 11 s with different noise keys (no screening). "Close": pyloric-like
and all 15 rhythm features within 2 experimental standard deviations of preparation 845_082_0044
(the goal's criterion, ``diagnostics.closeness``). Reports P(close in run 2 | close in run 1) and the
same for validity: a posterior concentrated on circuits that were close once can expect about that
share of close predictive runs.

    python benchmarks/pyloric_noise_ceiling.py [--num 1024] > benchmarks/results/pyloric_noise_ceiling.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402
from _pyloric import near_example, rhythm_closeness  # noqa: E402

setup_devices()

import jax  # noqa: E402

from neurosbi.models import Pyloric  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=1024)
    p.add_argument("--spread", type=float, default=0.1)
    a = p.parse_args()
    model = Pyloric(pyloric_flag=True, screen_ms=None)
    theta = near_example(model, a.num, jax.random.key(43), a.spread)

    def run(seed):
        _, pyloric, close = rhythm_closeness(model, theta, jax.random.key(seed))
        return pyloric, close

    t0 = time.perf_counter()
    (pyl1, close1), (pyl2, close2) = run(1), run(2)
    n_close, n_pyl = int(close1.sum()), int(pyl1.sum())
    out = {
        "benchmark": "pyloric_noise_ceiling", "machine": describe(), "num": a.num, "spread": a.spread,
        "wall_s": time.perf_counter() - t0,
        "pyloric_run_1": n_pyl, "close_run_1": n_close,
        "pyloric_again_given_pyloric": float(pyl2[pyl1].mean()) if n_pyl else None,
        "close_again_given_close": float(close2[close1].mean()) if n_close else None,
        "pyloric_given_close": float(pyl2[close1].mean()) if n_close else None,
        "close_run_2_given_pyloric_not_close": float(close2[pyl1 & ~close1].mean()) if (pyl1 & ~close1).any() else None,
        "binomial_se_close_again": float(np.sqrt(close2[close1].mean() * (1 - close2[close1].mean()) / n_close))
        if n_close else None,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
