"""The Hodgkin–Huxley summary statistics of Gonçalves et al. (2020), reference section 3.1.

Seven features of a voltage trace ``v[0..T]`` sampled every ``dt`` ms with a current step on
``(t_on, t_off)``: the spike count in the stimulus window, the resting potential (mean before
``t_on``) and its standard deviation over the last 10 % of that window, and the mean, variance,
skewness and (non-excess) kurtosis of ``v`` inside the stimulus window. Optionally the
autocorrelation of the stimulus window at lags of 1, 2, ... ms, appended after the seven.

Spike rule, as published: clip ``v`` at -10 mV from below, set to -10 every sample followed by a
lower one; the remaining drops mark the sample just before each peak above -10 mV. Detections in
the stimulus window less than 0.5 ms after the previous detection are merged. Times are compared as
integer sample counts (the published code compares floats; they agree except at an exact 0.5 ms gap).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._moments import moments

HH_FEATURES = ("spike_count", "rest_mean", "rest_std", "stim_mean", "stim_var", "stim_skew", "stim_kurtosis")


def spike_mask(v: Float[Array, "... time"], threshold: float = -10.0) -> Array:
    """Boolean ``[..., time - 1]``: True at sample ``i`` when ``i + 1`` is a peak above ``threshold``
    by the published rule (see module docstring)."""
    v = jnp.maximum(v, threshold)
    falls = v[..., 1:] < v[..., :-1]
    v = v.at[..., :-1].set(jnp.where(falls, threshold, v[..., :-1]))
    return v[..., 1:] < v[..., :-1]


def count_spikes(detected: Array, min_gap: int) -> Array:
    """Number of detections, each more than ``min_gap`` samples after the previous detection."""
    idx = jnp.arange(detected.shape[-1])
    last = jnp.where(detected, idx, -(10**9))
    previous = jax.lax.cummax(last, axis=last.ndim - 1)
    previous = jnp.concatenate([jnp.full_like(previous[..., :1], -(10**9)), previous[..., :-1]], axis=-1)
    return jnp.sum(detected & (idx - previous > min_gap), axis=-1)


class HHSummary(eqx.Module):
    """The published seven features (and optional autocorrelations) of ``v [time]``.

    Attributes:
        dt: sampling step (ms).
        rest: index range of the resting window (``t < t_on``).
        rest_tail: index range of the resting-std window (``int(0.9 t_on / dt)`` to ``int(t_on / dt)``).
        stim: index range of the stimulus window (``t_on < t < t_off``).
        min_gap: spikes closer than this many samples are merged (0.5 ms).
        autocorr_lags: autocorrelation lags in samples (published: ``n_xcorr`` lags of 1 ms each).
    """

    dt: float = eqx.field(static=True)
    rest: tuple[int, int] = eqx.field(static=True)
    rest_tail: tuple[int, int] = eqx.field(static=True)
    stim: tuple[int, int] = eqx.field(static=True)
    min_gap: int = eqx.field(static=True)
    autocorr_lags: tuple[int, ...] = eqx.field(static=True, default=())

    @classmethod
    def from_times(cls, dt: float, t_on: float, t_off: float, *, n_autocorr: int = 0, merge: float = 0.5):
        """Windows of the published code for a trace ``t = arange(0, duration + dt, dt)``."""
        on, off = round(t_on / dt), round(t_off / dt)
        return cls(
            dt=float(dt), rest=(0, on), rest_tail=(int(0.9 * t_on / dt), int(t_on / dt)), stim=(on + 1, off),
            min_gap=round(merge / dt), autocorr_lags=tuple(round(k / dt) for k in range(1, n_autocorr + 1)),
        )

    @property
    def names(self) -> list[str]:
        return list(HH_FEATURES) + [f"autocorr_{k + 1}ms" for k in range(len(self.autocorr_lags))]

    def __call__(self, v: Float[Array, " time"]) -> Float[Array, " features"]:
        return self.batched(v[None])[0]

    def batched(self, v: Float[Array, "batch time"]) -> Float[Array, "batch features"]:
        s0, s1 = self.stim
        # a detection at sample i (a drop from i to i + 1 after the clipping) depends on v[i .. i + 2]
        detected = spike_mask(v[:, s0 : s1 + 2])[:, : s1 - s0]  # detections for i in [s0, s1)
        count = count_spikes(detected, self.min_gap).astype(v.dtype)
        rest = jnp.mean(v[:, self.rest[0] : self.rest[1]], axis=1)
        rest_std = jnp.std(v[:, self.rest_tail[0] : self.rest_tail[1]], axis=1)
        mean, std, skew, kurt = jax.vmap(moments)(v[:, s0:s1]).T
        cols = [count, rest, rest_std, mean, std * std, skew, kurt + 3.0]
        if self.autocorr_lags:
            c = v[:, s0:s1] - mean[:, None]
            energy = jnp.sum(c * c, axis=1)
            cols += [jnp.sum(c[:, :-k] * c[:, k:], axis=1) / energy for k in self.autocorr_lags]
        return jnp.stack(cols, axis=1)
