"""Spike-train summary statistics, the same for every model that fires: what lets one compare models.

From a spike-count channel binned at ``dt`` (spikes per bin) and a stimulus window ``[t_on, t_off)``:

- ``rate_rest``, ``rate_stim``: spikes per second before and during the stimulus;
- ``latency``: time from onset to the first spike in the window (ms; the window length if none);
- ``isi_mean`` (ms), ``isi_cv``: mean and coefficient of variation of the inter-spike intervals in the
  window (window length and 0 with fewer than two spikes);
- ``adaptation``: mean of (ISI_{k+1} − ISI_k) / (ISI_{k+1} + ISI_k) (Druckmann et al. 2007's adaptation
  index; 0 with fewer than three spikes);
- ``burst_fraction``: share of intervals shorter than ``burst_isi`` (10 ms);
- ``fano``: variance over mean of the counts in ``count_window`` (100 ms) bins of the window.

Every statistic is defined (finite) for any spike train, silent ones included, so a model that does not
fire is a valid simulation, not a NaN. Spike times are the bins' start times (resolution ``dt``).
With ``voltage``, the mean and standard deviation of the potential channel before and during the
stimulus follow (where a model defines a potential).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

SPIKE_FEATURES = ("rate_rest", "rate_stim", "latency", "isi_mean", "isi_cv", "adaptation",
                  "burst_fraction", "fano")
VOLTAGE_FEATURES = ("v_mean_rest", "v_std_rest", "v_mean_stim", "v_std_stim")


class SpikeSummary(eqx.Module):
    """Spike-train features of traces ``[batch, channels, time]`` (channel ``spike_channel`` holds counts).

    Attributes:
        dt: bin width in ms.
        t_on, t_off: stimulus window in ms.
        spike_channel, voltage_channel: channel indices (``voltage_channel`` None: no voltage features).
        max_spikes: most spikes read in the window (more are ignored; 1 per bin at most is counted).
        burst_isi, count_window: ms.
    """

    dt: float = eqx.field(static=True)
    t_on: float = eqx.field(static=True)
    t_off: float = eqx.field(static=True)
    spike_channel: int = eqx.field(static=True, default=1)
    voltage_channel: int | None = eqx.field(static=True, default=None)
    max_spikes: int = eqx.field(static=True, default=512)
    burst_isi: float = eqx.field(static=True, default=10.0)
    count_window: float = eqx.field(static=True, default=100.0)

    @property
    def names(self) -> tuple[str, ...]:
        return SPIKE_FEATURES + (VOLTAGE_FEATURES if self.voltage_channel is not None else ())

    def __call__(self, traces):
        return jax.vmap(self._one)(traces)

    def _one(self, trace):
        on, off = round(self.t_on / self.dt), round(self.t_off / self.dt)
        spikes = trace[self.spike_channel] > 0.5
        window = spikes[on:off]
        length = (off - on) * self.dt
        n = jnp.sum(window)
        rate_rest = jnp.sum(spikes[:on]) / (on * self.dt) * 1000.0
        rate_stim = n / length * 1000.0
        (index,) = jnp.nonzero(window, size=self.max_spikes, fill_value=-1)
        times = index.astype(jnp.float32) * self.dt
        valid = index >= 0
        latency = jnp.where(n > 0, times[0], length)
        isi = times[1:] - times[:-1]
        isi_ok = valid[1:] & valid[:-1]
        n_isi = jnp.sum(isi_ok)
        mean_isi = jnp.sum(jnp.where(isi_ok, isi, 0.0)) / jnp.maximum(n_isi, 1)
        var_isi = jnp.sum(jnp.where(isi_ok, (isi - mean_isi) ** 2, 0.0)) / jnp.maximum(n_isi, 1)
        isi_mean = jnp.where(n_isi > 0, mean_isi, length)
        isi_cv = jnp.where(n_isi > 0, jnp.sqrt(var_isi) / jnp.maximum(mean_isi, 1e-6), 0.0)
        pair_ok = isi_ok[1:] & isi_ok[:-1]
        ratio = (isi[1:] - isi[:-1]) / jnp.maximum(isi[1:] + isi[:-1], 1e-6)
        adaptation = jnp.sum(jnp.where(pair_ok, ratio, 0.0)) / jnp.maximum(jnp.sum(pair_ok), 1)
        burst = jnp.sum(isi_ok & (isi < self.burst_isi)) / jnp.maximum(n_isi, 1)
        per_bin = max(1, round(self.count_window / self.dt))
        bins = (off - on) // per_bin
        counts = window[: bins * per_bin].reshape(bins, per_bin).sum(axis=1).astype(jnp.float32)
        fano = jnp.where(counts.mean() > 0, counts.var() / jnp.maximum(counts.mean(), 1e-6), 0.0)
        out = [rate_rest, rate_stim, latency, isi_mean, isi_cv, adaptation, burst, fano]
        if self.voltage_channel is not None:
            v = trace[self.voltage_channel]
            out += [v[:on].mean(), v[:on].std(), v[on:off].mean(), v[on:off].std()]
        return jnp.stack([jnp.asarray(o, jnp.float32) for o in out])
