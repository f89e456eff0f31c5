"""What a gradient of the MPR ODE likelihood costs in reverse and in forward mode.

The log density NUTS samples on the deterministic case (`neurosbi.mpr_table.ode_likelihood`, ε fixed,
10⁵ Euler steps of the skeleton, 3 parameters), vmapped over 4 chains as in the table: the value alone,
`jax.grad` in reverse mode, and in forward mode (`mcmc.forward_mode`, the table's setting); each jitted, timed as the
median of `--repeats` calls after one warm-up call, all in one run. Also checks the two gradients agree.

    python benchmarks/mpr_gradient_modes.py > benchmarks/results/mpr_gradient_modes.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from neurosbi import mpr_table as mt  # noqa: E402


def timed(f, x, repeats):
    jax.block_until_ready(f(x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(x))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args()
    data = mt.make_data("deterministic")
    with jax.enable_x64(True):
        plain = mt.ode_likelihood(data, eps=mt.EXACT_DATA_EPS, forward=False)
        position = plain.init(jax.random.key(0), a.chains)
        value = jax.jit(jax.vmap(plain.logdensity))
        reverse = jax.jit(jax.vmap(jax.grad(plain.logdensity)))
        forward = jax.jit(jax.vmap(jax.grad(mt.ode_likelihood(data, eps=mt.EXACT_DATA_EPS).logdensity)))
        rows = {"value_ms": timed(value, position, a.repeats), "reverse_grad_ms": timed(reverse, position, a.repeats),
                "forward_grad_ms": timed(forward, position, a.repeats)}
        g_rev, g_fwd = np.asarray(reverse(position)["u"]), np.asarray(forward(position)["u"])
    rows["max_relative_difference"] = float(np.max(np.abs(g_rev - g_fwd) / np.abs(g_rev)))
    rows["reverse_over_forward"] = rows["reverse_grad_ms"] / rows["forward_grad_ms"]
    print(json.dumps({"benchmark": "mpr_gradient_modes", "machine": describe(), "chains": a.chains,
                      "euler_steps": int(data.traces.shape[1]), "parameters": 3, **rows}, indent=2))


if __name__ == "__main__":
    main()
