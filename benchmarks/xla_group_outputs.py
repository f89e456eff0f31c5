"""Why the MPR simulator records only the state at the end of each group of 25 unrolled steps.

A stand-alone Euler–Maruyama loop of the MPR model (two-point noise, batch of the published truth,
31 blocks of 1,000 steps) in four variants: groups of 8 or of 25 unrolled steps recording only the
end state; groups of 25 that also keep eight running power sums (Σx, Σx², Σx³, Σx⁴ of v and r) in
the carry; groups of 25 recording every step. XLA's CPU compiler emits one fused loop per output of
the group and recomputes the unrolled steps in each, so every extra recorded value costs a group.

    python benchmarks/xla_group_outputs.py [--batch 2048] > benchmarks/results/xla_group_outputs.json
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

DT, BLOCKS = 0.001, 31


def make(group: int, mode: str):
    groups_per_block = 1000 // group

    def sim(key, theta):
        batch = theta.shape[0]
        delta, eta, J = theta[:, 0], theta[:, 1], theta[:, 2]
        scale = 0.1 * np.sqrt(DT)

        def body(carry, xs):
            current, bits = xs
            v, r, sums = carry
            out = []
            for k in range(group):
                if mode == "every_step":
                    out.append(jnp.stack([v, r]))
                if mode == "running_moments":
                    sums = tuple(s + x**p for s, (x, p) in zip(sums, [(v, 1), (v, 2), (v, 3), (v, 4),
                                                                      (r, 1), (r, 2), (r, 3), (r, 4)]))
                dv = v * v - np.pi**2 * r * r + J * r + eta + current
                dr = delta / np.pi + 2 * r * v
                v = v + DT * dv + jnp.where(((bits[0] >> k) & 1) != 0, scale, -scale)
                r = r + DT * dr + jnp.where(((bits[1] >> k) & 1) != 0, scale, -scale)
            return (v, r, sums), (jnp.stack(out) if mode == "every_step" else jnp.stack([v, r]))

        def block(carry, b):
            bits = jax.random.bits(jax.random.fold_in(key, b), (groups_per_block, 2, batch), jnp.uint32)
            first = (b * groups_per_block + jnp.arange(groups_per_block)) * group
            current = jnp.where((first >= 30_000) & (first < 60_000), 3.0, 0.0)
            carry, ys = jax.lax.scan(body, carry, (current, bits))
            return carry, ys.sum(0)

        carry = (jnp.full((batch,), -3.0), jnp.full((batch,), 0.5), tuple(jnp.zeros(batch) for _ in range(8)))
        return jax.lax.scan(block, carry, jnp.arange(BLOCKS))

    return jax.jit(sim)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=2048)
    b = p.parse_args().batch
    theta = jnp.tile(jnp.asarray([[0.7, -4.6, 14.5]], jnp.float32), (b, 1))
    out = {"benchmark": "xla_group_outputs", "machine": describe(), "batch": b,
           "unit": "simulations per second, scaled from 31 s to 100 s", "variants": {}}
    for group, mode in ((8, "end_state"), (25, "end_state"), (25, "running_moments"), (25, "every_step")):
        f = make(group, mode)
        t0 = time.perf_counter()
        jax.block_until_ready(f(jax.random.key(0), theta))
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(f(jax.random.key(1), theta))
        rate = b / (time.perf_counter() - t0) * BLOCKS / 100
        out["variants"][f"group_{group}_{mode}"] = {"sims_per_second": rate, "compile_and_first_run_s": compile_s}
        print(group, mode, round(rate), file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
