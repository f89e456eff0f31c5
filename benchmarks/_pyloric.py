"""Helpers shared by the pyloric benchmarks: circuits near the example, and the goal's closeness test."""

from pathlib import Path

import jax
import numpy as np

from neurosbi import load_bank
from neurosbi.diagnostics import closeness


def near_example(model, n: int, key, spread: float = 0.1) -> np.ndarray:
    """``n`` circuits around ``model.default_truth``: + ``spread`` of the prior width times a standard
    normal, clipped just inside the prior box (float32 ``[n, 31]``)."""
    low, high = np.asarray(model.prior.minval), np.asarray(model.prior.maxval)
    theta = model.default_truth + spread * (high - low) * np.asarray(jax.random.normal(key, (n, len(low))))
    return np.clip(theta, low + 1e-3 * (high - low), high - 1e-3 * (high - low)).astype(np.float32)


def rhythm_closeness(flagged, theta, key):
    """``(valid, pyloric_like, close)`` of full runs at ``theta`` of ``flagged`` (a ``Pyloric`` with
    ``pyloric_flag=True``): close = pyloric-like and all 15 rhythm features within 2 experimental std
    of the preparation (``diagnostics.closeness``)."""
    res = closeness(flagged, theta, flagged.observation, key, scale=flagged.feature_scale)
    pyloric = res["x"][:, -1] == 1
    return res["valid"], pyloric, pyloric & res["close"]


def campaign_banks(bank_dir) -> list:
    """``(bank, meta)`` of each round of a ``pyloric_posterior.py --bank-dir`` campaign, in order, up to
    the first round not started."""
    out = []
    while (path := Path(bank_dir) / f"round_{len(out) + 1}.zarr").exists():
        out.append(load_bank(path))
    return out
