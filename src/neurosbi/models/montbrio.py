"""The Montbrió–Pazó–Roxin mean-field model of QIF neurons (Montbrió et al. 2015; Baldy et al. 2024).

    dr/dt = Δ/π + 2 r v
    dv/dt = v² − π² r² + J r + η + I(t)

integrated by Euler–Maruyama at dt = 1 ms over 100 s from r0 = 0.5, v0 = −3, with independent
noise of intensity σ on r and v (reference section 2.1). Traces are returned as channels (v, r).

Noise. The published scheme draws two Gaussian increments per step (2 × 10⁵ per simulation), and
JAX's Gaussian generator caps the simulator near 700 simulations/s on 2 CPU cores
(shared/reference/performance.md). The default ``noise="two-point"`` is the simplified weak Euler
scheme (Kloeden & Platen 1992, §14.1): each increment is ±√dt with probability ½, one random bit per
step. It has the same weak order as Euler–Maruyama and converges to the same SDE;
``noise="gaussian"`` is the published scheme, kept selectable. ``tests/test_montbrio.py`` and
``benchmarks/noise_c2st.py`` check that both give the same feature distribution.

Features are read every ``feature_stride`` = 25 steps (every 25 ms, 4,000 samples of each variable
over 100 s; peaks at least 1 s = 40 samples apart). The published code reads every 1 ms sample;
``feature_stride=1`` does that, about 20× slower in all (``benchmarks/simulation_throughput.py``).
Why: XLA's CPU compiler fuses the unrolled steps of a group into one loop per *output*, recomputing
the whole group for each output, so every extra value recorded inside a group costs a full
recomputation of the group (``benchmarks/xla_group_outputs.py``: eight running moments in the carry
2.8× slower, every step recorded 47× slower). Recording only the state at the end of each group of 25
steps is free; the full-trace path (``simulate``) therefore keeps its inner loop rolled. The 25 ms
sampling is far finer than the model's time scales (relaxation and oscillation periods of 0.1–2 s);
``benchmarks/feature_stride.py`` measures what it changes in the features and in the posterior.

``autocorr_lags`` (e.g. ``AUTOCORR_LAGS``, 0.05–1.6 s) appends each window's autocorrelation at those
lags to the published features. With v alone (the missing-data case) the relaxation of the noise
around each window's fixed point carries what the moments miss: ``benchmarks/mpr_sbi_rows.py``
measures the parameter RMSE with and without them.

Simulation layout: one ``lax.scan`` over groups of 25 unrolled steps whose carry holds the whole batch,
so a step is a handful of vectorised operations over ``[batch]`` arrays; the noise for a block of
1,000 steps is drawn at once (25 bits of one uint32 per step group and variable).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import priors as _priors
from ..features import WindowedSummary
from ._base import Model, block_noise, simulation_keys

# Steps per unrolled inner loop (and random bits used per uint32 word). Longer groups amortise the
# per-iteration loop overhead (benchmarks/xla_group_outputs.py: 8 steps 3.4× slower than 25); 25
# divides 1,000 and the 30 s / 60 s stimulus edges, so the step input is constant within a group.
_GROUP = 25
_BLOCK_GROUPS = 40  # groups per block: 1,000 steps, the unit of noise draws
_BLOCK = _GROUP * _BLOCK_GROUPS

# Autocorrelation lags (s) of the extended feature set: octaves from 2 to 64 samples at 25 ms,
# spanning the relaxation times of the stable node and focus (about 0.1-2 s).
AUTOCORR_LAGS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)



def mean_field(v, r, delta, eta, J, current=0.0):
    """The Montbrió–Pazó–Roxin field (τ = 1): ``(dv/dt, dr/dt)`` with
    dv/dt = v² − π² r² + J r + η + I,  dr/dt = Δ/π + 2 r v."""
    # the order of the sum is part of the contract: the perturbed models repeat it and are compared bit for bit
    return v * v - jnp.pi**2 * r * r + J * r + eta + current, delta / jnp.pi + 2.0 * r * v

class Montbrio(Model):
    """MPR mean-field model with the published protocol.

    Attributes:
        noise_sigma: σ of the state noise when σ is not inferred (0.1 stochastic, 0 deterministic).
        infer_sigma: add σ ~ U[0, 1] as a fourth parameter.
        observe: ``"rv"`` (34 features) or ``"v"`` (17 features: the missing-data case).
        autocorr_lags: lags (s) of the windows' autocorrelations appended to the published features
            (3 per lag and variable); ``()`` = the published features only. ``AUTOCORR_LAGS`` is the
            measured choice.
        stimulus: ``"step"`` (I0 on [30, 60) s) or ``"sine"`` (I0 sin(ω t) over the whole trace).
        infer_input: add the stimulus amplitude I0 ~ U[0, 5] (step) or ω ~ U[π/100, π] (sine).
        noise: ``"two-point"`` (default, see module docstring) or ``"gaussian"`` (published).
        feature_stride: features read every k-th step (25 = every 25 ms, the fast path; 1 = every
            sample as published, about 20× slower; see the module docstring).
        dtype: ``"float32"`` (throughput) or ``"float64"`` (needs ``jax_enable_x64``).

    Example:
        >>> model = Montbrio()
        >>> x = model.simulate_features(jax.random.key(0), jnp.asarray([[0.7, -4.6, 14.5]]))
    """

    name: ClassVar[str] = "montbrio"
    per_simulation_keys: ClassVar[bool] = True
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
    feature_stride: int = eqx.field(static=True, default=_GROUP)
    autocorr_lags: tuple[float, ...] = eqx.field(static=True, default=())
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
        if not (isinstance(self.feature_stride, int) and self.feature_stride >= 1):
            raise ValueError(f"feature_stride must be a positive integer, got {self.feature_stride!r}")
        if not (isinstance(self.autocorr_lags, tuple) and all(lag > 0 for lag in self.autocorr_lags)):
            raise ValueError(
                f"autocorr_lags must be a tuple of positive lags in seconds, got {self.autocorr_lags!r}"
            )
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
            self.duration, self.time_step, t_on, t_off, stride=self.feature_stride,
            autocorr_times=self.autocorr_lags,
        )

    @property
    def feature_names(self):
        return tuple(
            f"{self.channel_names[c]}_{n}" for c in self.observed_channels for n in self.summary.names
        )

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

    def _runner(self, key, theta, every_step: bool):
        """``(state0, run_block)``: ``run_block(state, b)`` integrates block ``b`` (``_BLOCK`` steps).

        It returns the new state and either every sample of the block ``[_BLOCK, 2, batch]``
        (``every_step``; sample i is the state before step i) or the state after each group of
        ``_GROUP`` steps ``[_BLOCK_GROUPS, 2, batch]`` (the samples at steps 25, 50, ...). Both read
        the same noise, so the second is exactly every 25th sample of the first.
        """
        dtype = jnp.dtype(self.dtype)
        theta = jnp.asarray(theta, dtype)
        batch = theta.shape[0]
        keys = simulation_keys(key, batch)
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
        stochastic = self.infer_sigma or self.noise_sigma > 0

        def step(state, first_step, k, noise):
            v, r = state
            dv, dr = mean_field(v, r, delta, eta, J, self._input(first_step + k, extra))
            v, r = v + dt * dv, r + dt * dr
            if stochastic and self.noise == "two-point":
                v = v + jnp.where(((noise[0] >> k) & 1) != 0, noise_scale, -noise_scale)
                r = r + jnp.where(((noise[1] >> k) & 1) != 0, noise_scale, -noise_scale)
            elif stochastic:
                v = v + noise_scale * noise[k, 0]
                r = r + noise_scale * noise[k, 1]
            return v, r

        def group(state, xs):
            first_step, noise = xs
            if every_step:  # a rolled loop: unrolling 25 recorded steps makes XLA compile for minutes
                def one(state, k):
                    return step(state, first_step, k, noise), jnp.stack(state)

                return jax.lax.scan(one, state, jnp.arange(_GROUP, dtype=jnp.uint32))
            for k in range(_GROUP):  # unrolled: the whole group becomes one fused loop
                state = step(state, first_step, k, noise)
            return state, jnp.stack(state)

        def run_block(state, b):
            if not stochastic:
                noise = jnp.zeros((_BLOCK_GROUPS, 1), jnp.uint32)
            elif self.noise == "two-point":  # one bit per step: _GROUP of the 32 bits of a word
                noise = block_noise(keys, b, (_BLOCK_GROUPS, 2), "bits")
            else:
                noise = block_noise(keys, b, (_BLOCK_GROUPS, _GROUP, 2), "normal", dtype)
            firsts = (b * _BLOCK_GROUPS + jnp.arange(_BLOCK_GROUPS)) * _GROUP
            state, out = jax.lax.scan(group, state, (firsts, noise))
            return state, out.reshape(-1, 2, batch)

        state0 = (jnp.full((batch,), self.v0, dtype), jnp.full((batch,), self.r0, dtype))
        return state0, run_block

    def _integrate(self, key, theta, every_step: bool):
        """Samples ``[batch, 2, time]``: every step, or every ``_GROUP``-th step."""
        state0, run_block = self._runner(key, theta, every_step)
        n_blocks = -(-self.num_steps // _BLOCK)
        _, out = jax.lax.scan(run_block, state0, jnp.arange(n_blocks))
        out = out.reshape(-1, *out.shape[2:])  # [samples, 2, batch]
        if every_step:
            out = out[: self.num_steps]
        else:  # sample 0 is the initial state; the last group ends one sample past the trace
            out = jnp.concatenate([jnp.stack(state0)[None], out])[: -(-self.num_steps // _GROUP)]
        return jnp.transpose(out, (2, 1, 0))

    def simulate(self, key, theta):
        """Traces ``[batch, 2, time]`` (channels v, r) for ``theta [batch, dim]``, every step."""
        return self._integrate(key, theta, every_step=True)

    def simulate_features(self, key, theta):
        """``features(simulate(key, theta))`` without whole traces: only every ``_GROUP``-th sample
        is recorded when ``feature_stride == 25`` (the default)."""
        if self.feature_stride != _GROUP:
            return self.features(self.simulate(key, theta))
        sampled = self._integrate(key, theta, every_step=False)
        return self.summary.batched(sampled[:, list(self.observed_channels), :])

    def features(self, traces):
        """Features of full-resolution traces ``[batch, 2, time]``, read every ``feature_stride`` steps."""
        observed = traces[:, list(self.observed_channels), :: self.feature_stride]
        return self.summary.batched(observed)

