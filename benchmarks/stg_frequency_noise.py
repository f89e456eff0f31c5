"""STG hub frequency over the parameter box: mean and noise variance per parameter on a grid.

Where the 0.55 Hz property can be met (mean within one target std) and how much of the target variance
6.25e-4 Hz² the current noise alone supplies there. Prints one JSON object.

    python benchmarks/stg_frequency_noise.py [--points 21] [--draws 30]
"""

import argparse
import json

import jax
import numpy as np

from neurosbi.emergent_analyses import stg_frequency_grid
from neurosbi.models import get


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=21, help="grid points per parameter")
    parser.add_argument("--draws", type=int, default=30, help="noise draws per grid point")
    args = parser.parse_args()
    model = get("stg-hub")
    prop = model.emergent_property()
    target, sd = prop.mean[0], float(np.sqrt(prop.variance[0]))
    g_el, g_syn, w = stg_frequency_grid(model, jax.random.key(0), args.points, args.draws)
    grid = np.stack(np.meshgrid(g_el, g_syn, indexing="ij"), -1).reshape(-1, 2)
    mean, var = w.mean(0), w.var(0, ddof=1)
    near = np.abs(mean - target) <= sd
    quiet = near & (var < 1e-4)
    print(json.dumps({
        "grid_points": int(near.size), "draws_per_point": args.draws,
        "points_with_mean_within_one_sd": int(near.sum()),
        "noise_variance_there_Hz2": {"median": float(np.median(var[near])),
                                     "q25": float(np.percentile(var[near], 25)),
                                     "q75": float(np.percentile(var[near], 75)), "max": float(var[near].max())},
        "share_below_target_variance": float((var[near] < prop.variance[0]).mean()),
        "quiet_points": int(quiet.sum()),
        "quiet_range_nS": {"g_el": [float(grid[quiet, 0].min()), float(grid[quiet, 0].max())],
                           "g_synA": [float(grid[quiet, 1].min()), float(grid[quiet, 1].max())]},
        "quiet_mean_frequency_range_Hz": [float(mean[quiet].min()), float(mean[quiet].max())],
    }, indent=1))


if __name__ == "__main__":
    main()
