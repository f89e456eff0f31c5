"""The Montbrió–Pazó–Roxin mean-field model of QIF neurons (Montbrió et al. 2015; Baldy et al. 2024).

    dr/dt = Δ/π + 2 r v
    dv/dt = v² − π² r² + J r + η + I(t)

integrated by Euler–Maruyama at dt = 1 ms over 100 s from r0 = 0.5, v0 = −3, with independent
noise of intensity σ on r and v (reference section 2.1). Traces are returned as channels (v, r).

Noise. The published scheme draws two Gaussian increments per step (2 × 10⁵ per simulation), and
JAX's Gaussian generator caps the simulator near 700 simulations/s on 2 CPU cores
(shared/reference/performance.md). The default ``noise="two-point"`` is the simplified weak Euler
scheme (Kloeden & Platen 1992, §14.1): each increment is ±√dt with probability ½, 8 of them
unpacked from one random byte. It has the same weak order as Euler–Maruyama and converges to
the same SDE; ``noise="gaussian"`` is the published scheme, kept selectable. ``tests/test_montbrio.py``
checks that both give the same feature distribution at the published truth.

Simulation layout: one ``lax.scan`` over groups of 8 steps whose carry holds the whole batch, so a
step is a handful of vectorised operations over ``[batch]`` arrays; the noise for a block of 1,000
steps is drawn at once.

Features without whole traces (``simulate_features``): the 100 s are integrated as three scans over
1 s blocks (before, during and after the stimulus). Each block updates running central moments of its
window (Pébay's pairwise merge, stable in float32) and keeps only what the other features need: every
``median_stride``-th sample for the median and the full stimulus window for peak detection.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import priors as _priors
from ..features import (
    PER_VARIABLE,
    WindowedSummary,
    central_sums,
    exact_median,
    find_peaks,
    merge_central_sums,
    moments_from_sums,
)
from ._base import Model

# Steps per random byte (two-point noise) and per unrolled inner loop. 8 measured best here: with
# 16 or 32 unrolled steps XLA's CPU compiler did not finish within minutes.
_GROUP = 8
_BLOCK_GROUPS = 125  # groups per block: 1,000 steps, the unit of noise draws and streamed features
_BLOCK = _GROUP * _BLOCK_GROUPS


class Montbrio(Model):
    """MPR mean-field model with the published protocol.

    Attributes:
        noise_sigma: σ of the state noise when σ is not inferred (0.1 stochastic, 0 deterministic).
        infer_sigma: add σ ~ U[0, 1] as a fourth parameter.
        observe: ``"rv"`` (34 features) or ``"v"`` (17 features: the missing-data case).
        stimulus: ``"step"`` (I0 on [30, 60) s) or ``"sine"`` (I0 sin(ω t) over the whole trace).
        infer_input: add the stimulus amplitude I0 ~ U[0, 5] (step) or ω ~ U[π/100, π] (sine).
        noise: ``"two-point"`` (default, see module docstring) or ``"gaussian"`` (published).
        median_stride: window medians over every k-th sample (10 = every 10 ms; 1 = published, slower:
            an exact median of 10⁵ samples costs more than the simulation on a CPU).
        dtype: ``"float32"`` (throughput) or ``"float64"`` (needs ``jax_enable_x64``).

    Example:
        >>> model = Montbrio()
        >>> x = model.simulate_features(jax.random.key(0), jnp.asarray([[0.7, -4.6, 14.5]]))
    """

    name: ClassVar[str] = "montbrio"
    noise_sigma: float = eqx.field(static=True, default=0.1)
    infer_sigma: bool = eqx.field(static=True, default=False)
    observe: Literal["rv", "v"] = eqx.field(static=True, default="rv")
    stimulus: Literal["step", "sine"] = eqx.field(static=True, default="step")
    infer_input: bool = eqx.field(static=True, default=False)
    noise: Literal["two-point", "gaussian"] = eqx.field(static=True, default="two-point")
    amplitude: float = eqx.field(static=True, default=3.0)
    omega: float = eqx.field(static=True, default=math.pi / 20)
    duration: float = eqx.field(static=True, default=100.0)
    time_step: float = eqx.field(static=True, default=0.001)
    t_on: float = eqx.field(static=True, default=30.0)
    t_off: float = eqx.field(static=True, default=60.0)
    r0: float = eqx.field(static=True, default=0.5)
    v0: float = eqx.field(static=True, default=-3.0)
    median_stride: int = eqx.field(static=True, default=10)
    dtype: str = eqx.field(static=True, default="float32")

    def __check_init__(self):
        if self.observe not in ("rv", "v"):
            raise ValueError(f"observe must be 'rv' or 'v', got {self.observe!r}")
        if self.stimulus not in ("step", "sine"):
            raise ValueError(f"stimulus must be 'step' or 'sine', got {self.stimulus!r}")
        if self.noise not in ("two-point", "gaussian"):
            raise ValueError(f"noise must be 'two-point' or 'gaussian', got {self.noise!r}")
        if not self.noise_sigma >= 0:
            raise ValueError(f"noise_sigma must be >= 0, got {self.noise_sigma}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    # -- description ---------------------------------------------------------------------
    @property
    def param_names(self):
        names = ["delta", "eta", "J"]
        if self.infer_sigma:
            names.append("sigma")
        if self.infer_input:
            names.append("I0" if self.stimulus == "step" else "omega")
        return tuple(names)

    @property
    def prior(self):
        low, high = [0.1, -10.0, 5.0], [5.0, -3.0, 20.0]
        if self.infer_sigma:
            low.append(0.0), high.append(1.0)
        if self.infer_input:
            if self.stimulus == "step":
                low.append(0.0), high.append(5.0)
            else:
                low.append(math.pi / 100), high.append(math.pi)
        return _priors.box_uniform(low, high)

    @property
    def default_truth(self):
        truth = [0.7, -4.6, 14.5]
        if self.infer_sigma:
            truth.append(self.noise_sigma if self.noise_sigma > 0 else 0.1)
        if self.infer_input:
            truth.append(self.amplitude if self.stimulus == "step" else self.omega)
        return np.asarray(truth)

    @property
    def channel_names(self):
        return ("v", "r")

    @property
    def observed_channels(self) -> tuple[int, ...]:
        return (0, 1) if self.observe == "rv" else (0,)

    @property
    def dt(self):
        return self.time_step

    @property
    def num_steps(self) -> int:
        return int(round(self.duration / self.time_step))

    @property
    def trace_shape(self):
        return (2, self.num_steps)

    @property
    def summary(self) -> WindowedSummary:
        if self.stimulus == "step":
            t_on, t_off = self.t_on, self.t_off
        else:  # published sine runs use thirds of the trace as windows
            t_on, t_off = self.duration / 3, 2 * self.duration / 3
        return WindowedSummary.from_times(
            self.duration, self.time_step, t_on, t_off, median_stride=self.median_stride
        )

    @property
    def feature_names(self):
        return tuple(
            f"{self.channel_names[c]}_{n}" for c in self.observed_channels for n in PER_VARIABLE
        )

    def config(self):
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # every field is static configuration
        }

    # -- simulation -----------------------------------------------------------------------
    def _input(self, step, extra):
        """Stimulus at integer step index ``step`` ([batch] or scalar)."""
        t = step.astype(self.dtype) * self.time_step
        if self.stimulus == "step":
            amp = extra if (self.infer_input and extra is not None) else self.amplitude
            on = int(self.t_on / self.time_step)
            off = on + int((self.t_off - self.t_on) / self.time_step)
            return jnp.where((step >= on) & (step < off), amp, 0.0)
        omega = extra if (self.infer_input and extra is not None) else self.omega
        return self.amplitude * jnp.sin(omega * t)

    def _block_runner(self, key, theta):
        """``(state0, run_block)``: ``run_block(state, b)`` integrates block ``b`` of ``_BLOCK`` steps
        and returns the new state and the block's samples ``[_BLOCK, 2, batch]`` (before each step)."""
        dtype = jnp.dtype(self.dtype)
        theta = jnp.asarray(theta, dtype)
        batch = theta.shape[0]
        delta, eta, J = theta[:, 0], theta[:, 1], theta[:, 2]
        col = 3
        if self.infer_sigma:
            sigma = theta[:, col]
            col += 1
        else:
            sigma = jnp.full((batch,), self.noise_sigma, dtype)
        extra = theta[:, col] if self.infer_input else None
        dt = jnp.asarray(self.time_step, dtype)
        noise_scale = sigma * jnp.sqrt(dt)
        delta_over_pi = delta / jnp.pi
        pi2 = jnp.asarray(jnp.pi**2, dtype)
        stochastic = self.infer_sigma or self.noise_sigma > 0

        def step(state, i, eps_v, eps_r):
            v, r = state
            dv = v * v - pi2 * r * r + J * r + eta + self._input(i, extra)
            dr = delta_over_pi + 2.0 * r * v
            v_new = v + dt * dv
            r_new = r + dt * dr
            if stochastic:
                v_new = v_new + noise_scale * eps_v
                r_new = r_new + noise_scale * eps_r
            return (v_new, r_new)

        def group(state, xs):
            first_step, noise = xs
            out = []
            for k in range(_GROUP):  # unrolled: _GROUP steps per scan iteration
                out.append(jnp.stack(state))
                if not stochastic:
                    ev = er = None
                elif self.noise == "two-point":
                    bit = (noise >> k) & 1  # noise: uint8 [2, batch]
                    signs = (2 * bit.astype(jnp.int32) - 1).astype(dtype)
                    ev, er = signs[0], signs[1]
                else:
                    ev, er = noise[k, 0], noise[k, 1]
                state = step(state, first_step + k, ev, er)
            return state, jnp.stack(out)  # [_GROUP, 2, batch]

        def run_block(state, b):
            k = jax.random.fold_in(key, b)
            if not stochastic:
                noise = jnp.zeros((_BLOCK_GROUPS, 1), jnp.uint8)
            elif self.noise == "two-point":
                noise = jax.random.bits(k, (_BLOCK_GROUPS, 2, batch), jnp.uint8)
            else:
                noise = jax.random.normal(k, (_BLOCK_GROUPS, _GROUP, 2, batch), dtype)
            firsts = (b * _BLOCK_GROUPS + jnp.arange(_BLOCK_GROUPS)) * _GROUP
            state, out = jax.lax.scan(group, state, (firsts, noise))
            return state, out.reshape(_BLOCK, 2, batch)

        state0 = (jnp.full((batch,), self.v0, dtype), jnp.full((batch,), self.r0, dtype))
        return state0, run_block

    def simulate(self, key, theta):
        """Traces ``[batch, 2, time]`` (channels v, r) for ``theta [batch, dim]``."""
        state0, run_block = self._block_runner(key, theta)
        n_blocks = -(-self.num_steps // _BLOCK)
        _, out = jax.lax.scan(run_block, state0, jnp.arange(n_blocks))
        traces = out.reshape(-1, 2, out.shape[-1])[: self.num_steps]
        return jnp.transpose(traces, (2, 1, 0))

    def _fusable(self) -> bool:
        w = self.summary.windows
        return (
            self.num_steps % _BLOCK == 0
            and len(w) == 3
            and w[0][0] == 0 and w[0][1] % _BLOCK == 0
            and w[1][0] == w[0][1] + 1 and w[1][1] % _BLOCK == 0
            and w[2][0] == w[1][1] + 1 and w[2][1] == self.num_steps
        )

    def simulate_features(self, key, theta):
        """Features without materialising whole traces (see ``_fused``); same numbers as
        ``features(simulate(key, theta))`` up to float rounding."""
        if not self._fusable():
            return self.features(self.simulate(key, theta))
        return _fused_features(self, key, theta)

    def features(self, traces):
        observed = traces[:, list(self.observed_channels), :]
        return self.summary.batched(observed)


def _fused_features(model: Montbrio, key, theta):
    """The windowed summary of ``model`` computed block by block (see the module docstring)."""
    summary = model.summary
    (_, on), (_, off), _ = summary.windows
    stride = model.median_stride
    channels = list(model.observed_channels)
    state, run_block = model._block_runner(key, theta)

    def window(state, first_block, last_block, keep_full):
        """Scan blocks [first, last); the window starts one sample into the first block unless it is 0."""
        skip = 0 if first_block == 0 else 1
        state, block0 = run_block(state, first_block)
        block0 = block0[skip:][:, channels]
        sums = central_sums(block0)

        def body(carry, b):
            state, sums = carry
            state, blk = run_block(state, b)
            blk = blk[:, channels]
            sums = merge_central_sums(sums, central_sums(blk))
            kept = blk if keep_full else blk[skip::stride]
            return (state, sums), kept

        (state, sums), rest = jax.lax.scan(body, (state, sums), jnp.arange(first_block + 1, last_block))
        head = block0 if keep_full else block0[::stride]
        samples = jnp.concatenate([head, rest.reshape(-1, *rest.shape[2:])])  # [time, channels, batch]
        return state, sums, samples

    state, rest_sums, rest_samples = window(state, 0, on // _BLOCK, False)
    state, stim_sums, stim_trace = window(state, on // _BLOCK, off // _BLOCK, True)
    state, post_sums, post_samples = window(state, off // _BLOCK, model.num_steps // _BLOCK, False)

    per_window = []
    for sums, samples in ((rest_sums, rest_samples), (stim_sums, stim_trace[::stride]), (post_sums, post_samples)):
        mean, std, skew, kurt = moments_from_sums(sums)  # each [channels, batch]
        median = jax.vmap(jax.vmap(exact_median, in_axes=1), in_axes=1)(samples)  # [channels, batch]
        per_window.append(jnp.stack([mean, std, median, skew, kurt], axis=-1))  # [channels, batch, 5]
    peaks = find_peaks(jnp.moveaxis(stim_trace, 0, -1), summary.peak_height, summary.peak_distance)
    peak_stats = summary._peak_stats(peaks, stim_trace.dtype)  # [channels, batch, 2]
    feats = jnp.concatenate(per_window + [peak_stats], axis=-1)  # [channels, batch, 17]
    return jnp.transpose(feats, (1, 0, 2)).reshape(feats.shape[1], -1)
