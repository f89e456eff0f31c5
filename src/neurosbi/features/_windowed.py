"""The windowed summary statistics of Baldy et al. (2024), reference section 2.3.

For each observed variable, in each of three windows (before, during and after the stimulus):
mean, standard deviation, median, skewness and excess kurtosis (15 values), then the number of
peaks in the stimulus window and the time of the first one (17 per variable). Windows are fixed
index ranges computed once, exactly as the published code selects them from ``np.arange``.

Optionally (``autocorr_lags``), the sample autocorrelation of each window at a few lags is appended
(``acf{lag}_{window}``, lag in samples). It is not in the published set; it measures the linear
relaxation around each window's resting state, which is what a noisy trace of one variable says
about the other (``benchmarks/mpr_sbi_rows.py``, the missing-data case). Definition as in
statsmodels' ``acf``: ``sum_t c_t c_(t+k) / sum_t c_t^2`` with ``c`` the window minus its mean.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._moments import exact_median, moments
from ._peaks import find_peaks

PER_VARIABLE = (
    [f"{stat}_{window}" for window in ("rest", "stim", "post")
     for stat in ("mean", "std", "median", "skew", "kurtosis")]
    + ["peak_count", "first_peak_time"]
)


class WindowedSummary(eqx.Module):
    """17 statistics per variable over rest / stimulus / post windows.

    Attributes:
        windows: three ``(start, stop)`` index ranges (stop exclusive).
        dt: sampling step of the traces, in the model's time unit.
        t_on: stimulus onset, used for the first-peak time as in the published code.
        peak_height: minimum peak height (0.2 in the paper).
        peak_distance: minimum distance between peaks in samples (1000 = 1 s at 1 ms).
    """

    windows: tuple[tuple[int, int], ...] = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    t_on: float = eqx.field(static=True)
    peak_height: float = eqx.field(static=True, default=0.2)
    peak_distance: int = eqx.field(static=True, default=1000)
    autocorr_lags: tuple[int, ...] = eqx.field(static=True, default=())

    def __check_init__(self):
        shortest = min(stop - start for start, stop in self.windows)
        for lag in self.autocorr_lags:
            if not (isinstance(lag, int) and 1 <= lag < shortest):
                raise ValueError(
                    f"autocorrelation lag {lag!r} (in samples) must be an integer in [1, {shortest - 1}] "
                    "(the shortest window); use shorter lags or a finer sampling"
                )

    @classmethod
    def from_times(
        cls, duration: float, dt: float, t_on: float, t_off: float, *, stride: int = 1,
        peak_spacing: float = 1.0, peak_height: float = 0.2, autocorr_times: tuple[float, ...] = (),
    ):
        """Windows ``t < t_on``, ``t_on < t < t_off``, ``t > t_off`` over a trace sampled every ``dt``
        for ``duration`` (the published ``np.arange(0, duration, dt)``) and read every ``stride``-th
        sample. Peaks closer than ``peak_spacing`` (time) are merged as ``find_peaks(distance=...)``.
        ``autocorr_times`` (time) adds the windows' autocorrelations at those lags, rounded to samples.
        Times are compared on integer step counts, so no window edge depends on float rounding.
        """
        steps = np.arange(0, int(round(duration / dt)), stride)
        on, off = round(t_on / dt), round(t_off / dt)
        masks = (steps < on, (steps > on) & (steps < off), steps > off)
        windows = []
        for name, m in zip(("before", "during", "after"), masks):
            where = np.flatnonzero(m)
            if where.size < 2:
                raise ValueError(
                    f"the window {name} the stimulus holds {where.size} samples (duration {duration}, "
                    f"t_on {t_on}, t_off {t_off}, sampled every {dt * stride}); it needs at least 2"
                )
            windows.append((int(where[0]), int(where[-1]) + 1))
        step = float(dt * stride)
        lags = tuple(int(round(t / step)) for t in autocorr_times)
        if len(set(lags)) != len(lags) or 0 in lags:
            raise ValueError(
                f"autocorrelation lags {tuple(autocorr_times)} give {lags} samples at a sampling step of "
                f"{step}: each must be at least one step and all distinct"
            )
        return cls(
            windows=tuple(windows), dt=step, t_on=float(t_on), peak_height=float(peak_height),
            peak_distance=max(1, int(round(peak_spacing / step))), autocorr_lags=lags,
        )

    @property
    def names(self) -> list[str]:
        """Feature names of one variable: the published 17, then the autocorrelations."""
        acf = [f"acf{lag}_{window}" for window in ("rest", "stim", "post") for lag in self.autocorr_lags]
        return list(PER_VARIABLE) + acf

    def __call__(self, x: Float[Array, " time"]) -> Float[Array, " features"]:
        start, stop = self.windows[1]
        peaks = find_peaks(x[start:stop], self.peak_height, self.peak_distance)
        return jnp.concatenate([self._window_stats(x), self._peak_stats(peaks, x.dtype), self._autocorr(x)])

    def batched(self, traces: Float[Array, "batch channels time"]) -> Float[Array, "batch features"]:
        """Apply to every channel of every trace and concatenate channels' features."""
        per = jax.vmap(jax.vmap(self._window_stats))(traces)  # [batch, channels, 15]
        start, stop = self.windows[1]
        peaks = find_peaks(traces[..., start:stop], self.peak_height, self.peak_distance)
        acf = jax.vmap(jax.vmap(self._autocorr))(traces)
        per = jnp.concatenate([per, self._peak_stats(peaks, traces.dtype), acf], axis=-1)
        return per.reshape(traces.shape[0], -1)

    def _autocorr(self, x):
        out = []
        for start, stop in self.windows:
            c = x[start:stop] - jnp.mean(x[start:stop])
            energy = jnp.sum(c * c)
            out += [jnp.sum(c[:-lag] * c[lag:]) / energy for lag in self.autocorr_lags]
        return jnp.stack(out) if out else jnp.zeros((0,), x.dtype)

    def _window_stats(self, x):
        stats = []
        for start, stop in self.windows:
            w = x[start:stop]
            mean, std, skew, kurt = moments(w)
            stats += [mean, std, exact_median(w), skew, kurt]
        return jnp.stack(stats)

    def _peak_stats(self, peaks, dtype):
        """Peak count and first-peak time ``[..., 2]`` from a peak mask ``[..., time]``."""
        count = jnp.sum(peaks, axis=-1).astype(dtype)
        first = jnp.argmax(peaks, axis=-1)
        onset = jnp.where(count > 0, self.t_on + self.dt * first, 0.0).astype(dtype)
        return jnp.stack([count, onset], axis=-1)
