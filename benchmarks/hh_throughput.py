"""Hodgkin–Huxley simulation throughput (120 ms at 0.01 ms, 8 parameters from the prior, 7 features).

Baseline: what the published code does, a compiled per-simulation exponential-Euler loop (numba here,
cython in the paper) with Gaussian noise, then the features with numpy / scipy (reference §3.1). Both
run in this process, side by side; ours through ``neurosbi.simulate`` (chunks of 1,024, compile
excluded), with both noise schemes.

    python benchmarks/hh_throughput.py [--num 8192] [--baseline-num 300] [--one-device] > benchmarks/results/hh_throughput.json

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
    import scipy.stats

    @numba.njit(cache=False)
    def efun(z):
        return 1 - z / 2 if abs(z) < 1e-4 else z / (math.exp(z) - 1)

    @numba.njit(cache=False)
    def gate(x, vt, which):
        if which == 0:
            a, b = 1.28 * efun(-0.25 * (x - vt - 13)), 1.4 * efun(0.2 * (x - vt - 40))
        elif which == 1:
            a, b = 0.128 * math.exp(-(x - vt - 17) / 18), 4 / (1 + math.exp(-0.2 * (x - vt - 40)))
        else:
            a, b = 0.16 * efun(-0.2 * (x - vt - 15)), 0.5 * math.exp(-(x - vt - 10) / 40)
        return a / (a + b), a + b

    @numba.njit(cache=False)
    def run(th, amp, out):
        g_na, g_k, g_l, g_m, tau_max, minus_vt, sigma, minus_el = th
        vt, dt = -minus_vt, 0.01
        v = -70.0
        m, _ = gate(v, vt, 0)
        h, _ = gate(v, vt, 1)
        n, _ = gate(v, vt, 2)
        p = 1 / (1 + math.exp(-0.1 * (v + 35)))
        out[0] = v
        for i in range(1, out.shape[0]):
            cur = amp if 1000 <= i - 1 < 11000 else 0.0
            g = m**3 * g_na * h + n**4 * g_k + g_l + g_m * p
            v_inf = (m**3 * g_na * h * 53 - n**4 * g_k * 107 - g_l * minus_el - g_m * p * 107 + cur
                     + sigma * np.random.randn() / math.sqrt(dt)) / g
            v = v_inf + (v - v_inf) * math.exp(-dt * g)
            out[i] = v
            mi, r = gate(v, vt, 0)
            m = mi + (m - mi) * math.exp(-dt * r)
            hi, r = gate(v, vt, 1)
            h = hi + (h - hi) * math.exp(-dt * r)
            ni, r = gate(v, vt, 2)
            n = ni + (n - ni) * math.exp(-dt * r)
            pi_ = 1 / (1 + math.exp(-0.1 * (v + 35)))
            tau_p = tau_max / (3.3 * math.exp(0.05 * (v + 35)) + math.exp(-0.05 * (v + 35)))
            p = pi_ + (p - pi_) * math.exp(-dt / tau_p)

    t = np.arange(0, 120.01, 0.01)

    def features(trace, t_on=10.0, t_off=110.0, dt=0.01):
        v = trace.copy()
        v[v < -10] = -10
        v[np.where(np.diff(v) < 0)] = -10
        times = t[np.where(np.diff(v) < 0)]
        times = times[(times > t_on) & (times < t_off)]
        if len(times):
            times = times[np.append(1, np.diff(times)) > 0.5]
        x = trace[(t > t_on) & (t < t_off)]
        sd = np.std(x)
        return [len(times), trace[t < t_on].mean(), trace[int(0.9 * t_on / dt): int(t_on / dt)].std(), x.mean(),
                scipy.stats.moment(x, 2), scipy.stats.moment(x, 3) / sd**3, scipy.stats.moment(x, 4) / sd**4]

    model = neurosbi.models.get("hh")
    theta = np.asarray(model.prior.sample(jax.random.key(seed), (n,)), np.float64)
    buf = np.empty(12001)
    run(theta[0], model.amplitude, buf)  # compile
    t0 = time.perf_counter()
    for th in theta:
        run(th, model.amplitude, buf)
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for th in theta:
        run(th, model.amplitude, buf)
        features(buf)
    total_s = time.perf_counter() - t0
    return {"num": n, "sims_per_second_simulation_only": n / sim_s, "sims_per_second_with_features": n / total_s}


def ours(n: int, noise: str, chunk: int) -> dict:
    model = neurosbi.models.get("hh", noise=noise)
    bank = neurosbi.simulate(model, n, jax.random.key(0), chunk_size=chunk, progress=False)
    return {"num": n, "noise": noise, "chunk_size": chunk, "sims_per_second": bank.stats["sims_per_second"],
            "compile_s": bank.stats["compile_s"], "num_devices": bank.stats["num_devices"], "num_invalid": bank.stats["num_invalid"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=8192)
    p.add_argument("--baseline-num", type=int, default=300)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--one-device", action="store_true", help="XLA's default single CPU device")
    a = p.parse_args()
    base = baseline(a.baseline_num)
    runs = [ours(a.num, noise, a.chunk) for noise in ("two-point", "gaussian")]
    best = runs[0]["sims_per_second"]
    out = {
        "benchmark": "hh_throughput", "machine": describe(),
        "baseline_numba_published_loop_one_core": base, "neurosbi": runs,
        "speedup_vs_baseline_with_features": best / base["sims_per_second_with_features"],
        "goal_sims_per_second": 20_000, "goal_met": bool(best >= 20_000),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
