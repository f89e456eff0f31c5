"""Pyloric network simulation throughput (11 s at 0.025 ms, 31 parameters from the prior, 18 features).

Baseline: what the published simulator does, a compiled per-simulation exponential-Euler loop over the
three neurons and seven synapses (numba here, cython in the paper) with Gaussian current noise,
recording the voltage (reference section 3.2; the paper reports ~5 simulated seconds per second on one
core). The baseline is the simulation alone (no features): a lower bound on its cost. Ours runs
through ``neurosbi.simulate`` (compile excluded) with the features. Both in this process, side by side.

    python benchmarks/pyloric_throughput.py [--num 2048] [--baseline-num 4] [--one-device] > benchmarks/results/pyloric_throughput.json

By default the simulations use one XLA host device per core (``neurosbi.use_all_cores()``, as the CLI).
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402

setup_devices()  # before any JAX work

import jax  # noqa: E402

import neurosbi  # noqa: E402

DURATION_S = 11.0


def baseline(n: int, seed: int = 0) -> dict:
    import numba

    # (p, m_inf a, b, h_inf a, b) per current: Na, CaT, CaS, A, KCa, Kd, H
    kin = np.asarray([
        [3, 25.5, -5.29, 48.9, 5.18], [3, 27.1, -7.2, 32.1, 5.5], [3, 33.0, -8.1, 60.0, 6.2],
        [3, 27.2, -8.7, 56.9, 4.9], [4, 28.3, -12.6, 0, 0], [4, 12.3, -11.8, 0, 0], [1, 75.0, 5.5, 0, 0],
    ])
    conns = np.asarray([[1, 0, -70, 40], [1, 0, -80, 100], [2, 0, -70, 40], [2, 0, -80, 100],
                        [0, 1, -70, 40], [2, 1, -70, 40], [1, 2, -70, 40]], np.float64)

    @numba.njit(cache=False)
    def sig(v, a, b):
        return 1.0 / (1.0 + math.exp((v + a) / b))

    @numba.njit(cache=False)
    def tau_m(c, v):
        if c == 0:
            return 2.64 - 2.52 * sig(v, 120, -25)
        if c == 1:
            return 43.4 - 42.6 * sig(v, 68.1, -20.5)
        if c == 2:
            return 2.8 + 14 / (math.exp((v + 27) / 10) + math.exp((v + 70) / -13))
        if c == 3:
            return 23.2 - 20.8 * sig(v, 32.9, -15.2)
        if c == 4:
            return 180.6 - 150.2 * sig(v, 46, -22.7)
        if c == 5:
            return 14.4 - 12.8 * sig(v, 28.3, -19.2)
        return 2 / (math.exp(-14.59 - 0.086 * v) + math.exp(-1.87 + 0.0701 * v))

    @numba.njit(cache=False)
    def tau_h(c, v):
        if c == 0:
            return (1.34 / (1 + math.exp((v + 62.9) / -10))) * (1.5 + 1 / (1 + math.exp((v + 34.9) / 3.6)))
        if c == 1:
            return 210 - 179.6 * sig(v, 55, -16.9)
        if c == 2:
            return 120 + 300 / (math.exp((v + 55) / 9) + math.exp((v + 65) / -16))
        return 77.2 - 58.4 * sig(v, 38.9, -26.5)

    @numba.njit(cache=False)
    def run(theta, out, kin, conns):
        dt, steps = 0.025, out.shape[1] - 1
        g = theta[:24].reshape(3, 8) * 0.628e-3
        gs = np.exp(theta[24:])
        rt = 8.31451e3 * 283 / (2 * 96485.3415)
        v = np.full(3, -50.0)
        ca = np.full(3, 0.05)
        m = np.zeros((3, 7))
        h = np.zeros((3, 4))
        s = np.zeros(7)
        cond = np.zeros(8)
        out[:, 0] = v
        for i in range(1, steps + 1):
            syn_g = np.zeros(3)
            syn_d = np.zeros(3)
            for k in range(7):
                post = int(conns[k, 0])
                syn_g[post] += gs[k] * s[k]
                syn_d[post] += gs[k] * s[k] * conns[k, 2]
            v_new = np.empty(3)
            for j in range(3):
                for c in range(7):
                    cond[c] = g[j, c] * m[j, c] ** kin[c, 0] * (h[j, c] if c < 4 else 1.0)
                e_ca = rt * math.log(3000.0 / ca[j])
                ca_inf = 0.05 - 14961 * (cond[1] + cond[2]) * (v[j] - e_ca)
                ca_old = ca[j]
                ca[j] = ca_inf + (ca[j] - ca_inf) * math.exp(-dt / 200)
                total = syn_g[j] + cond[:7].sum() + g[j, 7]
                drive = (syn_d[j] + cond[0] * 50 + (cond[1] + cond[2]) * e_ca + (cond[3] + cond[4] + cond[5]) * -80
                         + cond[6] * -20 + g[j, 7] * -50 + 0.001 * np.random.randn())
                v_inf = drive / total
                v_new[j] = v_inf + (v[j] - v_inf) * math.exp(-dt * total / 0.6283e-3)
                for c in range(7):
                    mi = sig(v[j], kin[c, 1], kin[c, 2]) * (ca_old / (ca_old + 3) if c == 4 else 1.0)
                    m[j, c] = mi + (m[j, c] - mi) * math.exp(-dt / tau_m(c, v[j]))
                    if c < 4:
                        hi = sig(v[j], kin[c, 3], kin[c, 4])
                        h[j, c] = hi + (h[j, c] - hi) * math.exp(-dt / tau_h(c, v[j]))
            for k in range(7):
                s_inf = 1 / (1 + math.exp((-35 - v[int(conns[k, 1])]) / 5))
                tau = conns[k, 3] * (1 - s_inf)
                s[k] = s_inf if dt > tau else s[k] + (s_inf - s[k]) * dt / tau
            v[:] = v_new
            out[:, i] = v

    model = neurosbi.models.get("pyloric")
    theta = np.asarray(model.prior.sample(jax.random.key(seed), (n,)), np.float64)
    buf = np.empty((3, model.num_steps + 1))
    small = np.empty((3, 11))
    run(theta[0], small, kin, conns)  # compile
    t0 = time.perf_counter()
    for th in theta:
        run(th, buf, kin, conns)
    sim_s = time.perf_counter() - t0
    return {"num": n, "simulated_seconds_per_second_one_core": n * DURATION_S / sim_s}


def ours(n: int, noise: str, chunk: int, slice_size: int) -> dict:
    model = neurosbi.models.get("pyloric", noise=noise)
    bank = neurosbi.simulate(model, n, jax.random.key(0), chunk_size=chunk, slice_size=slice_size, progress=False,
                             screen=False)  # every simulation the full 11 s
    cores = os.cpu_count()
    rate = bank.stats["sims_per_second"] * DURATION_S
    return {"num": n, "noise": noise, "chunk_size": chunk, "slice_size": slice_size,
            "sims_per_second": bank.stats["sims_per_second"], "simulated_seconds_per_second": rate,
            "simulated_seconds_per_second_per_core": rate / cores, "compile_s": bank.stats["compile_s"],
            "num_devices": bank.stats["num_devices"], "num_invalid": bank.stats["num_invalid"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=2048)
    p.add_argument("--baseline-num", type=int, default=4)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--slice", type=int, default=512)
    p.add_argument("--noise", nargs="+", default=["two-point", "gaussian"])
    p.add_argument("--one-device", action="store_true", help="XLA's default single CPU device")
    a = p.parse_args()
    base = baseline(a.baseline_num)
    runs = [ours(a.num, noise, a.chunk, a.slice) for noise in a.noise]
    best = runs[0]["simulated_seconds_per_second_per_core"]
    out = {
        "benchmark": "pyloric_throughput", "machine": describe(),
        "baseline_numba_published_loop_one_core": base, "neurosbi": runs,
        "speedup_per_core_vs_baseline": best / base["simulated_seconds_per_second_one_core"],
        "goal_simulated_seconds_per_second_per_core": 50, "goal_met": bool(best >= 50),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
