"""Where MPR simulation time goes: per-simulation cost of each stage, one batch of prior draws.

    python benchmarks/profile_montbrio.py [--batch 1024] > benchmarks/results/profile_montbrio.json
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
from neurosbi.features import exact_median, find_peaks, moments  # noqa: E402


def per_sim_ms(fn, *args, batch, repeats=3):
    fn = jax.jit(fn)
    jax.block_until_ready(fn(*args))  # compile
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return 1e3 * (time.perf_counter() - t0) / repeats / batch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=1024)
    b = p.parse_args().batch
    model = neurosbi.models.get("montbrio")
    theta = model.prior.sample(jax.random.key(5), (b,))
    key = jax.random.key(0)
    sampled = jax.jit(lambda k, t: model._integrate(k, t, every_step=False))(key, theta)  # [b, 2, 4000]
    summary = model.summary
    _, (start, stop), _ = summary.windows
    stim = sampled[:, :, start:stop]
    out = {
        "benchmark": "profile_montbrio", "machine": describe(), "batch": b, "unit": "ms per simulation",
        "simulate_features": per_sim_ms(model.simulate_features, key, theta, batch=b),
        "integrate_recording_every_25th_sample": per_sim_ms(
            lambda k, t: model._integrate(k, t, every_step=False), key, theta, batch=b),
        "integrate_recording_every_sample": per_sim_ms(model.simulate, key, theta[: b // 4], batch=b // 4, repeats=1),
        "summary_all_features": per_sim_ms(summary.batched, sampled, batch=b),
        "moments_stim_window_two_channels": per_sim_ms(jax.vmap(jax.vmap(moments)), stim, batch=b),
        "median_stim_window_two_channels": per_sim_ms(jax.vmap(jax.vmap(exact_median)), stim, batch=b),
        "peaks_stim_window_two_channels": per_sim_ms(
            lambda x: find_peaks(x, summary.peak_height, summary.peak_distance), stim, batch=b),
        "jnp_median_stim_window_two_channels": per_sim_ms(lambda x: jnp.median(x, axis=-1), stim, batch=b),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
