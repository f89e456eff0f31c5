"""Where MPR simulation time goes: per-simulation cost of each stage, one batch of prior draws.

    python benchmarks/profile_montbrio.py [--batch 256] > benchmarks/results/profile_montbrio.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

import neurosbi  # noqa: E402
from neurosbi.features import exact_median, find_peaks  # noqa: E402


def per_sim_ms(fn, *args, batch):
    jax.block_until_ready(fn(*args))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return 1e3 * (time.perf_counter() - t0) / batch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=256)
    b = p.parse_args().batch
    model = neurosbi.models.get("montbrio")
    theta = model.prior.sample(jax.random.key(5), (b,))
    key = jax.random.key(0)
    traces = jax.jit(model.simulate)(key, theta)
    (_, _), (start, stop), _ = model.summary.windows
    stim = traces[:, :, start:stop]
    out = {
        "benchmark": "profile_montbrio", "machine": describe(), "batch": b, "unit": "ms per simulation",
        "simulate_features_fused": per_sim_ms(jax.jit(model.simulate_features), key, theta, batch=b),
        "simulate_full_traces": per_sim_ms(jax.jit(model.simulate), key, theta, batch=b),
        "peaks_two_channels": per_sim_ms(jax.jit(lambda x: find_peaks(x, 0.2, 1000)), stim, batch=b),
        "median_one_window_stride_10": per_sim_ms(jax.jit(jax.vmap(exact_median)), stim[:, 0, ::10], batch=b),
        "median_one_window_all_samples": per_sim_ms(jax.jit(jax.vmap(exact_median)), stim[:, 0], batch=b),
        "jnp_median_one_window": per_sim_ms(jax.jit(lambda x: jnp.median(x, axis=-1)), stim[:, 0], batch=b),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
