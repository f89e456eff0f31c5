"""The pyloric-rhythm summary statistics of Prinz et al. (2004) as used by Gonçalves et al. (2020).

Reference section 3.2. From the voltage of the three neurons AB/PD (``PM``), LP and PY over the
analysis window (10 s after a 1 s burn-in):

- spikes: local maxima above -10 mV;
- bursts: runs of spikes separated by gaps of at least 150 ms, kept when longer than 40 ms;
- the rhythm's period is the mean interval between AB/PD burst starts; a period is *triphasic* when
  LP and PY each start exactly one burst in it; the circuit is triphasic when at least 90 % of its
  periods are (and it has at least one period);
- *pyloric-like*: triphasic, and in at least 70 % of the triphasic periods LP starts no later than
  PY, LP ends no later than PY, and AB/PD ends no later than LP starts;
- plateau: per burst cycle (a burst start to the next; the last to the last spike), the longest
  run above -30 mV; the mean over cycles, replaced by 2.5 ms when below 5 ms (so that a spike's
  width is not a plateau).

Eighteen features in the published order (``PYLORIC_FEATURES``): cycle period; burst durations of
AB/PD, LP, PY; end-to-start AB/PD→LP and LP→PY; start-to-start AB/PD→LP and AB/PD→PY; duty cycles;
phase gaps AB/PD-LP and LP-PY; start phases of LP and PY; plateau durations. Everything that needs
triphasic periods is NaN for a non-triphasic circuit (the simulation is then invalid). Times in ms.

Resolution. Every quantity is computed from two bits per neuron per *group* of consecutive samples
(``group_steps``, 10 samples = 0.25 ms at the published step): "a spike peaked in this group" and
"the last sample of the group is above the plateau threshold" (the published code subsamples the
plateau test by ten too). A simulator writes these bits as it runs (no trace is kept; the analysis
window of one simulation is 40,000 bytes); ``flags_from_traces`` makes the same bits from a trace.
Spike times are therefore known to 0.25 ms, far below the features' spread (tens of ms).

Two departures from the published code, both deliberate: spikes are local maxima of the raw trace
(the published code first smooths with a 0.5 ms Savitzky-Golay filter; spurious maxima from the
0.04 mV per-step noise fall in the same or the next group, which changes no burst start or end);
and a plateau that lasts to the end of its cycle is counted (the published loop drops a run that
is still open at the cycle's end).

Written in JAX with fixed shapes (bursts are at least 150 ms apart, so an analysis window holds a
known maximum number of them), so it runs inside the compiled simulation and is vmapped over the batch.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, UInt8

NEURONS = ("PM", "LP", "PY")
PYLORIC_FEATURES = (
    "cycle_period",
    "burst_length_PM",
    "burst_length_LP",
    "burst_length_PY",
    "end_to_start_PM_LP",
    "end_to_start_LP_PY",
    "start_to_start_PM_LP",
    "start_to_start_PM_PY",
    "duty_cycle_PM",
    "duty_cycle_LP",
    "duty_cycle_PY",
    "phase_gap_PM_LP",
    "phase_gap_LP_PY",
    "phase_LP",
    "phase_PY",
    "plateau_PM",
    "plateau_LP",
    "plateau_PY",
)

SPIKE_THRESHOLD = -10.0  # mV, a spike is a local maximum above this
PLATEAU_THRESHOLD = -30.0  # mV
BURST_GAP = 150.0  # ms, spikes at least this far apart belong to different bursts
MIN_BURST = 40.0  # ms, shorter bursts are dropped
TRIPHASIC_FRACTION = 0.9
PYLORIC_FRACTION = 0.7
PLATEAU_MIN = 5.0  # ms, mean plateaus shorter than this ...
PLATEAU_FLOOR = 2.5  # ms, ... are reported as this

_FAR = 1 << 30  # an index further than any trace


def peak_flags(v_before: Array, v: Array, v_after: Array) -> Array:
    """True where ``v`` is a spike peak: above threshold, not below the sample before, and the
    sample after not above it (the published rule, written for three consecutive samples)."""
    return (v > SPIKE_THRESHOLD) & (v >= v_before) & (v_after <= v)


def pack_flags(spiked: Bool[Array, "3 ..."], above: Bool[Array, "3 ..."]) -> UInt8[Array, ...]:
    """Six bits: spike of neuron ``n`` at bit ``n``, plateau test of neuron ``n`` at bit ``3 + n``."""
    word = jnp.zeros(spiked.shape[1:], jnp.uint8)
    for n in range(3):
        word = word | (spiked[n].astype(jnp.uint8) << n) | (above[n].astype(jnp.uint8) << (3 + n))
    return word


class PyloricSummary(eqx.Module):
    """The 18 pyloric features (optionally + the pyloric-like flag) from per-group flags.

    Attributes:
        group_ms: duration of one group of samples (ms): ``group_steps * dt``.
        group_steps: samples per group.
        num_groups: groups in the analysis window.
        plateaus: include the three plateau durations (18 features) or not (15).
        pyloric_flag: append ``pyloric_like`` (1.0 or 0.0) after the features.

    Example:
        >>> summary = PyloricSummary(group_ms=0.25, group_steps=10, num_groups=40_000)
        >>> x = summary.from_flags(flags)  # flags: uint8 [batch, 40_000]
    """

    group_ms: float = eqx.field(static=True)
    group_steps: int = eqx.field(static=True)
    num_groups: int = eqx.field(static=True)
    plateaus: bool = eqx.field(static=True, default=True)
    pyloric_flag: bool = eqx.field(static=True, default=False)

    @property
    def names(self) -> tuple[str, ...]:
        names = PYLORIC_FEATURES if self.plateaus else PYLORIC_FEATURES[:15]
        return names + (("pyloric_like",) if self.pyloric_flag else ())

    @property
    def max_bursts(self) -> int:
        """Bursts start at least ``BURST_GAP`` apart: the window holds at most this many."""
        return self.num_groups // math.ceil(BURST_GAP / self.group_ms) + 2

    def flags_from_traces(self, v: Float[Array, "batch 3 time"], start: int) -> UInt8[Array, "batch groups"]:
        """Per-group flags of traces ``v`` whose analysis window is samples ``start + 1`` onward
        (sample ``start`` is the last of the burn-in): the bits a simulator writes online."""
        g, n = self.group_steps, self.num_groups
        window = v[..., start - 1 : start + g * n + 1]  # one sample before, for the peak rule
        # a peak at sample i is seen when sample i + 1 arrives: it belongs to sample i + 1's group
        peaks = peak_flags(window[..., :-2], window[..., 1:-1], window[..., 2:])
        spiked = peaks.reshape(*peaks.shape[:-1], n, g).any(-1)
        above = window[..., 1 + g :: g][..., :n] > PLATEAU_THRESHOLD
        return pack_flags(jnp.moveaxis(spiked, 1, 0), jnp.moveaxis(above, 1, 0))

    def from_flags(self, flags: UInt8[Array, "batch groups"]) -> Float[Array, "batch features"]:
        return jax.vmap(self._one)(flags)

    # -- one simulation ------------------------------------------------------------------------
    def _bursts(self, spiked, above):
        """Kept bursts of one neuron: starts and ends (group index, ``_FAR`` padded), their number,
        mean duration and mean plateau (ms)."""
        n, k = self.num_groups, self.max_bursts
        idx = jnp.arange(n)
        gap = BURST_GAP / self.group_ms
        last = jax.lax.cummax(jnp.where(spiked, idx, -_FAR))
        previous = jnp.concatenate([jnp.full((1,), -_FAR), last[:-1]])
        upcoming = jax.lax.cummin(jnp.where(spiked, idx, _FAR), reverse=True)
        following = jnp.concatenate([upcoming[1:], jnp.full((1,), _FAR)])
        starts = jnp.nonzero(spiked & (idx - previous >= gap), size=k, fill_value=_FAR)[0]
        ends = jnp.nonzero(spiked & (following - idx >= gap), size=k, fill_value=_FAR)[0]
        keep = (starts < _FAR) & ((ends - starts) * self.group_ms > MIN_BURST)
        order = jnp.argsort(~keep, stable=True)
        starts = jnp.where(keep[order], starts[order], _FAR)
        ends = jnp.where(keep[order], ends[order], _FAR)
        count = keep.sum()
        lengths = jnp.where(starts < _FAR, (ends - starts).astype(jnp.float32), 0.0)
        mean_length = lengths.sum() / count.astype(jnp.float32) * self.group_ms  # NaN without bursts

        # plateau: cycle j spans [starts[j], starts[j + 1]), the last one [starts[-1], last spike)
        last_spike = last[-1]
        cycle = jnp.cumsum(jnp.zeros(n, jnp.int32).at[starts].add(1, mode="drop")) - 1
        cycle = jnp.where((cycle < 0) | (idx >= last_spike), k, cycle)
        cycle_start = jnp.concatenate([starts, jnp.full((1,), _FAR)])[cycle]
        last_below = jax.lax.cummax(jnp.where(above, -_FAR, idx))
        run = jnp.minimum(idx - last_below, idx - cycle_start + 1)
        longest = jax.ops.segment_max(jnp.where(above, run, 0), cycle, num_segments=k + 1)[:k]
        longest = jnp.where(jnp.arange(k) < count, jnp.maximum(longest, 0), 0).astype(jnp.float32)
        plateau = longest.sum() / count.astype(jnp.float32) * self.group_ms
        plateau = jnp.where(plateau < PLATEAU_MIN, PLATEAU_FLOOR, plateau)
        plateau = jnp.where(count > 0, plateau, jnp.nan)
        return starts, ends, count, mean_length, plateau

    def _one(self, flags):
        bits = [(flags >> b) & 1 for b in range(6)]
        bursts = [self._bursts(bits[n] == 1, bits[3 + n] == 1) for n in range(3)]
        (pm_s, pm_e, pm_n, *_), (lp_s, lp_e, *_), (py_s, py_e, *_) = bursts
        k, ms = self.max_bursts, self.group_ms
        nan = jnp.float32(jnp.nan)

        periods = pm_n - 1
        span = (pm_s[jnp.maximum(pm_n - 1, 0)] - pm_s[0]).astype(jnp.float32)
        periods_f = jnp.maximum(periods, 1).astype(jnp.float32)
        period = jnp.where(periods > 0, span / periods_f * ms, nan)
        p_start, p_end = pm_s[:-1], pm_s[1:]
        in_period = jnp.arange(k - 1) < periods

        def burst_in_period(starts, ends):
            first = jnp.searchsorted(starts, p_start, side="left")
            count = jnp.searchsorted(starts, p_end, side="left") - first
            first = jnp.minimum(first, k - 1)
            return count, starts[first], ends[first]

        lp_count, lp_start, lp_end = burst_in_period(lp_s, lp_e)
        py_count, py_start, py_end = burst_in_period(py_s, py_e)
        tri = in_period & (lp_count == 1) & (py_count == 1)
        n_tri = tri.sum().astype(jnp.float32)
        triphasic = (periods > 0) & (n_tri >= TRIPHASIC_FRACTION * periods_f)

        def mean_over_tri(value):
            value = jnp.where(tri, value.astype(jnp.float32), 0.0)
            return jnp.where(triphasic, value.sum() / jnp.maximum(n_tri, 1.0) * ms, nan)

        pm_start, pm_end = p_start, pm_e[:-1]
        end_to_start = (mean_over_tri(lp_start - pm_end), mean_over_tri(py_start - lp_end))
        start_to_start = (mean_over_tri(lp_start - pm_start), mean_over_tri(py_start - pm_start))
        ordered = (lp_start <= py_start) & (lp_end <= py_end) & (pm_end <= lp_start)
        n_ordered = jnp.where(tri, ordered, False).sum().astype(jnp.float32)
        pyloric = triphasic & (n_ordered >= PYLORIC_FRACTION * jnp.maximum(n_tri, 1.0))

        lengths = [b[3] for b in bursts]
        out = [
            period,
            *lengths,
            *end_to_start,
            *start_to_start,
            *(length / period for length in lengths),
            *(e / period for e in end_to_start),
            *(s / period for s in start_to_start),
        ]
        if self.plateaus:
            out += [b[4] for b in bursts]
        if self.pyloric_flag:
            out.append(pyloric.astype(jnp.float32))
        return jnp.stack([jnp.asarray(o, jnp.float32) for o in out])
