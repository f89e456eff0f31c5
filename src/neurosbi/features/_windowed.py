"""The windowed summary statistics of Baldy et al. (2024), reference section 2.3.

For each observed variable, in each of three windows (before, during and after the stimulus):
mean, standard deviation, median, skewness and excess kurtosis (15 values), then the number of
peaks in the stimulus window and the time of the first one (17 per variable). Windows are fixed
index ranges computed once, exactly as the published code selects them from ``np.arange``.
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
        median_stride: the median is taken over every ``median_stride``-th sample of a window
            (1 = all samples, the published definition).
    """

    windows: tuple[tuple[int, int], ...] = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    t_on: float = eqx.field(static=True)
    peak_height: float = eqx.field(static=True, default=0.2)
    peak_distance: int = eqx.field(static=True, default=1000)
    median_stride: int = eqx.field(static=True, default=1)

    @classmethod
    def from_times(cls, duration: float, dt: float, t_on: float, t_off: float, **kw):
        """Windows ``t < t_on``, ``t_on < t < t_off``, ``t > t_off`` on ``np.arange(0, duration, dt)``."""
        ts = np.arange(0.0, duration, dt)
        masks = (ts < t_on, (ts > t_on) & (ts < t_off), ts > t_off)
        windows = []
        for m in masks:
            where = np.flatnonzero(m)
            windows.append((int(where[0]), int(where[-1]) + 1))
        return cls(windows=tuple(windows), dt=float(dt), t_on=float(t_on), **kw)

    @property
    def names(self) -> list[str]:
        return list(PER_VARIABLE)

    def __call__(self, x: Float[Array, " time"]) -> Float[Array, 17]:
        start, stop = self.windows[1]
        peaks = find_peaks(x[start:stop], self.peak_height, self.peak_distance)
        return jnp.concatenate([self._window_stats(x), self._peak_stats(peaks, x.dtype)])

    def batched(self, traces: Float[Array, "batch channels time"]) -> Float[Array, "batch features"]:
        """Apply to every channel of every trace and concatenate channels' features."""
        per = jax.vmap(jax.vmap(self._window_stats))(traces)  # [batch, channels, 15]
        start, stop = self.windows[1]
        peaks = find_peaks(traces[..., start:stop], self.peak_height, self.peak_distance)
        per = jnp.concatenate([per, self._peak_stats(peaks, traces.dtype)], axis=-1)
        return per.reshape(traces.shape[0], -1)

    def _window_stats(self, x):
        stats = []
        for start, stop in self.windows:
            w = x[start:stop]
            mean, std, skew, kurt = moments(w)
            stats += [mean, std, exact_median(w[:: self.median_stride]), skew, kurt]
        return jnp.stack(stats)

    def _peak_stats(self, peaks, dtype):
        """Peak count and first-peak time ``[..., 2]`` from a peak mask ``[..., time]``."""
        count = jnp.sum(peaks, axis=-1).astype(dtype)
        first = jnp.argmax(peaks, axis=-1)
        onset = jnp.where(count > 0, self.t_on + self.dt * first, 0.0).astype(dtype)
        return jnp.stack([count, onset], axis=-1)
