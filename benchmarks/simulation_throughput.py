"""MPR simulation throughput (100 s at 1 ms, σ = 0.1, 34 features) against the published approach.

Baseline: what the published code does: a numba-jitted Euler–Maruyama loop per simulation, then the
features with numpy / scipy (reference section 2.3). Both run in this process, side by side.

    python benchmarks/simulation_throughput.py [--num 4096] [--baseline-num 200] [--one-device] > result.json

By default the simulations use one XLA host device per core (`neurosbi.use_all_cores()`, as the CLI).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402

setup_devices()  # before any JAX work

import jax  # noqa: E402

import neurosbi  # noqa: E402


def baseline(n: int, seed: int = 0) -> dict:
    import numba
    import scipy.signal
    import scipy.stats

    @numba.njit(cache=False)
    def em(delta, eta, J, sigma, nt, dt, on, off, amp, out):
        np.random.seed(seed)
        v, r = -3.0, 0.5
        for i in range(nt):
            out[0, i] = v
            out[1, i] = r
            cur = amp if on <= i < off else 0.0
            dr = delta / math.pi + 2 * r * v
            dv = v * v - (math.pi * r) ** 2 + J * r + eta + cur
            v = v + dt * dv + math.sqrt(dt) * sigma * np.random.randn()
            r = r + dt * dr + math.sqrt(dt) * sigma * np.random.randn()

    def features(x, dt=0.001, t_on=30.0, t_off=60.0):
        ts = np.arange(0, 100, dt)
        out = []
        for m in (ts < t_on, (ts > t_on) & (ts < t_off), ts > t_off):
            w = x[m]
            out += [w.mean(), w.std(), np.median(w), scipy.stats.skew(w), scipy.stats.kurtosis(w)]
        peaks = scipy.signal.find_peaks(x[(ts > t_on) & (ts < t_off)], height=0.2, distance=1000)[0]
        return out + [len(peaks), t_on + dt * peaks[0] if len(peaks) else 0.0]

    rng = np.random.default_rng(seed)
    low, high = np.array([0.1, -10, 5]), np.array([5, -3, 20])
    theta = low + (high - low) * rng.random((n, 3))
    buf = np.empty((2, 100_000))
    em(0.7, -4.6, 14.5, 0.1, 100_000, 0.001, 30_000, 60_000, 3.0, buf)  # compile
    t0 = time.perf_counter()
    for th in theta:
        em(th[0], th[1], th[2], 0.1, 100_000, 0.001, 30_000, 60_000, 3.0, buf)
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for th in theta:
        em(th[0], th[1], th[2], 0.1, 100_000, 0.001, 30_000, 60_000, 3.0, buf)
        features(buf[0]), features(buf[1])
    total_s = time.perf_counter() - t0
    return {"num": n, "sims_per_second_simulation_only": n / sim_s, "sims_per_second_with_features": n / total_s,
            "seconds_per_simulation": sim_s / n}


def ours(n: int, noise: str, chunk: int, feature_stride: int = 25) -> dict:
    model = neurosbi.models.get("montbrio", noise=noise, feature_stride=feature_stride)
    bank = neurosbi.simulate(model, n, jax.random.key(0), chunk_size=chunk, progress=False)
    return {"num": n, "noise": noise, "feature_stride": feature_stride, "chunk_size": chunk,
            "sims_per_second": bank.stats["sims_per_second"],
            "compile_s": bank.stats["compile_s"], "num_devices": bank.stats["num_devices"], "num_invalid": bank.stats["num_invalid"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=4096)
    p.add_argument("--baseline-num", type=int, default=200)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--one-device", action="store_true", help="XLA's default single CPU device")
    a = p.parse_args()
    result = {"benchmark": "mpr_simulation_throughput", "machine": describe()}
    result["neurosbi_two_point"] = ours(a.num, "two-point", a.chunk)
    result["neurosbi_gaussian"] = ours(a.num // 2, "gaussian", a.chunk)
    # the published features on every 1 ms sample (feature_stride=1): full traces, smaller chunks
    result["neurosbi_two_point_every_sample"] = ours(a.num // 8, "two-point", 256, feature_stride=1)
    result["baseline_numba_published"] = baseline(a.baseline_num)
    b = result["baseline_numba_published"]["sims_per_second_with_features"]
    result["speedup_vs_baseline_with_features"] = {
        "two_point": result["neurosbi_two_point"]["sims_per_second"] / b,
        "gaussian": result["neurosbi_gaussian"]["sims_per_second"] / b,
        "two_point_every_sample": result["neurosbi_two_point_every_sample"]["sims_per_second"] / b,
        # the baseline is one process on one core; two processes would at best double it
        "two_point_vs_baseline_on_both_cores": result["neurosbi_two_point"]["sims_per_second"] / (2 * b),
    }
    result["goal"] = {"sims_per_second": 2000, "speedup": 20}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
