"""Reconstruct a hidden variable from one observed signal by delay embedding and local linear regression.

Method (seed 003; reference §2.8): embed the observed signal
``x`` with ``dimension`` copies ``delay`` samples apart, centred on the time to reconstruct; embed every
series of a simulated bank the same way and pair each embedded point with the hidden variable ``y`` at
its centre time; for each observed embedded point take its ``neighbours`` nearest bank points (default
``(d + 1)(d + 2)``, the published count) and fit ``y ≈ a + bᵀ(e − e*)`` on them by least squares; the
reconstruction is the intercept ``a``. An optional Savitzky–Golay filter smooths the result (the
published RMSE 0.151 is after a 0.3 s, order-2 filter).

Libraries: the neighbour search is scipy's ``cKDTree`` (built once per bank, parallel queries); the local fits are
batched least squares in numpy (pseudo-inverses of 182 × 13 designs for d = 12; sklearn's per-point
``LinearRegression`` would be ~10⁴ Python calls); the filter is ``scipy.signal.savgol_filter``. The embedding is
:func:`neurosbi.dynamics.delay_embed`.

Edges: a point is reconstructed only where the whole embedding window fits inside the series, i.e. from
``(d // 2) · delay`` samples after the start to ``(d - d // 2 - 1) · delay`` before the end; the rest is NaN.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._embedding import delay_embed


@dataclasses.dataclass(frozen=True)
class DelayReconstruction:
    """``values [T]``: the (smoothed) reconstruction, NaN outside ``covered``; ``raw [T]``: before smoothing."""

    values: np.ndarray
    raw: np.ndarray
    covered: slice

    def rmse(self, truth, *, raw: bool = False) -> float:
        """Root-mean-square error against ``truth [T]`` over the covered samples."""
        truth = np.asarray(truth, np.float64)
        if truth.shape != self.values.shape:
            raise ValueError(f"truth has shape {truth.shape}; the reconstruction has {self.values.shape}")
        est = (self.raw if raw else self.values)[self.covered]
        return float(np.sqrt(np.mean((est - truth[self.covered]) ** 2)))


def _embed(x: np.ndarray, delay: int, dimension: int) -> np.ndarray:
    return delay_embed([(np.arange(x.shape[0]), x)], dimension, delay)[0][1]


def _check_series(name: str, a, ndim: int) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.ndim != ndim:
        shape = "[T]" if ndim == 1 else "[series, T]"
        raise ValueError(f"{name} must be {shape}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(a)))} NaN or infinite values: drop the series "
                         "(bank) or interpolate the gaps (observation) before reconstructing")
    return a


class DelayRegressor:
    """A bank of simulated (observed, hidden) pairs, embedded once with its neighbour tree built; call
    :meth:`reconstruct` for each observed series.

    Args:
        bank_observed, bank_hidden: ``[series, T']`` simulated pairs, sampled at the observation's interval.
        delay: samples between copies of the embedding.
        dimension: copies in the embedding.
        neighbours: bank points per local fit; default ``(dimension + 1)(dimension + 2)``.
    """

    def __init__(self, bank_observed, bank_hidden, *, delay: int, dimension: int, neighbours: int | None = None):
        from scipy.spatial import cKDTree

        bx, by = _check_series("bank_observed", bank_observed, 2), _check_series("bank_hidden", bank_hidden, 2)
        if bx.shape != by.shape:
            raise ValueError(f"bank_observed {bx.shape} and bank_hidden {by.shape} must have the same shape")
        if delay < 1 or dimension < 1:
            raise ValueError(f"expected delay >= 1 and dimension >= 1, got {delay}, {dimension}")
        self.delay, self.dimension = int(delay), int(dimension)
        self.neighbours = (dimension + 1) * (dimension + 2) if neighbours is None else int(neighbours)
        self._centre, span = (dimension // 2) * delay, (dimension - 1) * delay
        self._points = np.concatenate([_embed(s, delay, dimension) for s in bx])
        self._targets = np.concatenate([s[self._centre:s.shape[0] - span + self._centre] for s in by])
        if not dimension + 1 <= self.neighbours <= self._points.shape[0]:
            raise ValueError(f"neighbours must be between {dimension + 1} (a local linear fit in {dimension} "
                             f"dimensions) and the {self._points.shape[0]} embedded bank points, got {self.neighbours}: "
                             "simulate a larger bank or ask for fewer neighbours")
        self._tree = cKDTree(self._points)

    def reconstruct(self, observed, *, smooth_window: int | None = None, smooth_order: int = 2, chunk: int = 2048,
                    workers: int = -1) -> DelayReconstruction:
        """The hidden series behind ``observed [T]``.

        Args:
            smooth_window: odd length (samples) of a Savitzky–Golay filter applied to the covered
                reconstruction; None for none.
            chunk: observed points per batch of local fits (memory: chunk × neighbours × dimension).
            workers: threads of the neighbour search (-1: all cores).
        """
        x = _check_series("observed", observed, 1)
        if smooth_window is not None and (smooth_window % 2 == 0 or smooth_window <= smooth_order):
            raise ValueError(f"smooth_window must be odd and larger than smooth_order={smooth_order}, got {smooth_window}")
        points = _embed(x, self.delay, self.dimension)
        raw_covered = np.empty(points.shape[0])
        for start in range(0, points.shape[0], chunk):
            query = points[start:start + chunk]
            _, index = self._tree.query(query, k=self.neighbours, workers=workers)
            design = self._points[index] - query[:, None, :]  # [batch, k, d], centred on the query
            design /= np.maximum(design.std(axis=1, keepdims=True), 1e-12)
            design = np.concatenate([np.ones(design.shape[:2] + (1,)), design], axis=2)
            # least squares by SVD (pseudo-inverse): neighbours on a manifold of lower dimension than the
            # embedding make the local design rank-deficient, where normal equations amplify rounding
            pinv = np.linalg.pinv(design, rcond=1e-10)  # [batch, d + 1, k]
            raw_covered[start:start + chunk] = np.einsum("bk,bk->b", pinv[:, 0], self._targets[index])  # intercept
        covered = slice(self._centre, self._centre + points.shape[0])
        raw = np.full(x.shape[0], np.nan)
        raw[covered] = raw_covered
        values = raw.copy()
        if smooth_window is not None:
            from scipy.signal import savgol_filter

            values[covered] = savgol_filter(raw_covered, smooth_window, smooth_order)
        return DelayReconstruction(values, raw, covered)
