"""Cost of one EPI step's simulations per model: the gradient of the batch-mean constraint statistics
through the simulator at the model's published batch size (``epi_defaults``), after compilation.

This is what bounds an EPI run's wall time (iterations per epoch × epochs × this), so it says which
fits can run in a session. For sc-proanti both the property's common-random-number statistics and
independent noise per parameter are timed.

    python benchmarks/epi_step_cost.py --out benchmarks/results/epi_step_cost.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _machine import describe  # noqa: E402

from neurosbi import models  # noqa: E402
from neurosbi.priors import bounds  # noqa: E402


def time_step(statistics, z, repeats: int) -> float:
    step = jax.jit(jax.value_and_grad(lambda z, k: jnp.mean(statistics(k, z))))
    step(z, jax.random.key(0))[0].block_until_ready()
    t = time.perf_counter()
    for i in range(repeats):
        step(z, jax.random.key(i + 1))[0].block_until_ready()
    return (time.perf_counter() - t) / repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name in ("lds-2d", "rank2-rnn", "v1-ssn", "sc-proanti", "stg-hub"):
        model = models.get(name)
        prop = model.emergent_property()
        d = model.epi_defaults
        low, high = bounds(model.prior)
        z = jax.random.uniform(jax.random.key(7), (d["batch_size"], len(low)), minval=low, maxval=high)
        variants = {"property": prop.constraint_statistics}
        if name == "sc-proanti":
            variants["independent noise"] = model.accuracy
        for label, fn in variants.items():
            seconds = time_step(fn, z, args.repeats)
            rows.append({"model": name, "statistics": label, "batch_size": d["batch_size"],
                         "simulations_per_z": prop.simulations_per_z, "seconds_per_step": seconds,
                         "iterations_per_epoch": d["iterations_per_epoch"],
                         "minutes_per_epoch": seconds * d["iterations_per_epoch"] / 60})
            print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({"machine": describe(), "rows": rows}, indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
