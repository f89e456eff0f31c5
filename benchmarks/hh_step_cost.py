"""Where the Hodgkin–Huxley simulator's time goes (the figures behind benchmarks/README.md).

Through ``neurosbi.simulate`` (prior draws, chunks of 1,024 as two slices of 512, one XLA host device
per core unless ``--one-device``), four variants of the same model:

- ``online_features``: the default fused path (features accumulated inside the scan);
- ``trace_features``: the whole trace recorded (rolled loop), then the features computed on it;
- ``dynamics_only``: the fused path with the online features replaced by one running sum (which keeps
  the dynamics from being optimised away): the cost of the step itself;
- ``online_features_slices_2048``: the default path in chunks of 4,096 as slices of 2,048.

It also counts the fused kernels XLA emits for one 25-step group of the compiled default path.

    python benchmarks/hh_step_cost.py [--num 8192] [--one-device] > benchmarks/results/hh_step_cost.json
"""

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402

setup_devices()  # before any JAX work

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import neurosbi  # noqa: E402
from neurosbi.features import HHSummary  # noqa: E402
from neurosbi.models import HodgkinHuxley  # noqa: E402


class _SumOnly(HHSummary):
    """Keeps only Σv: the dynamics stay live, the feature work goes."""

    def online_init(self, v0):
        return {"sum": v0}

    def online_group(self, acc, vs, s_first):
        return {"sum": acc["sum"] + sum(vs)}

    def online_finish(self, acc):
        return jnp.repeat(acc["sum"][:, None], 7, axis=1)


class _DynamicsOnly(HodgkinHuxley):
    @property
    def summary(self):
        base = super().summary
        return _SumOnly(dt=base.dt, rest=base.rest, rest_tail=base.rest_tail, stim=base.stim, min_gap=base.min_gap)


class _TraceFeatures(HodgkinHuxley):
    def simulate_features(self, key, theta):
        return self.features(self.simulate(key, theta))


def throughput(model, n, chunk, slice_size) -> dict:
    bank = neurosbi.simulate(model, n, jax.random.key(0), chunk_size=chunk, slice_size=slice_size, progress=False)
    return {"sims_per_second": bank.stats["sims_per_second"], "num_devices": bank.stats["num_devices"],
            "chunk_size": chunk, "slice_size": slice_size}


def fusions_per_group(batch: int = 512) -> int:
    """Fused kernels in the largest loop body of the compiled default path (one 25-step group)."""
    model = HodgkinHuxley()
    theta = jnp.tile(jnp.asarray(model.default_truth, jnp.float32), (batch, 1))
    text = jax.jit(model.simulate_features).lower(jax.random.key(0), theta).compile().as_text()
    return max(len(re.findall(r" fusion\(", block)) for block in text.split("\n\n"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=8192)
    p.add_argument("--one-device", action="store_true", help="XLA's default single CPU device")
    a = p.parse_args()
    runs = {
        "online_features": throughput(HodgkinHuxley(), a.num, 1024, 512),
        "trace_features": throughput(_TraceFeatures(), max(a.num // 4, 3072), 1024, 512),
        "dynamics_only": throughput(_DynamicsOnly(), a.num, 1024, 512),
        "online_features_slices_2048": throughput(HodgkinHuxley(), 2 * a.num, 4096, 2048),
    }
    for name, r in runs.items():
        print(f"{name}: {r['sims_per_second']:.0f} sims/s on {r['num_devices']} device(s)", file=sys.stderr)
    out = {"benchmark": "hh_step_cost", "machine": describe(), "runs": runs,
           "fusions_per_25_step_group": fusions_per_group()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
