"""Single-compartment Hodgkin–Huxley neuron of Gonçalves et al. (2020), reference section 3.1.

    C dV/dt = -gNa m³h (V - ENa) - gK n⁴ (V - EK) - gleak (V - Eleak) - gM p (V - EK) + I(t) + σ ξ(t)

Na, delayed-rectifier K, leak and a slow M-type K current (Pospischil et al. 2008) with Traub rates
shifted by the threshold parameter V_T; exponential Euler at dt = 0.01 ms for 120 ms from V0 = -70 mV
with the gates at their steady state, and a 3.248 µA/cm² step on [10, 110) ms (5e-4 µA over a soma of
70 µm radius). Eight parameters: gNa, gK, gleak, gM (mS/cm²), τ_max (ms), -V_T (mV), σ (µA/cm²),
-E_leak (mV). The trace holds the 12,001 samples of ``arange(0, 120 + dt, dt)``.

Noise. The published step adds ``σ ξ / √dt`` to the input with ``ξ ~ N(0, 1)``: 12,000 Gaussian
draws per simulation, which alone cap JAX near 3,600 simulations/s here
(shared/reference/performance.md). The default ``noise="two-point"`` draws ``ξ = ±1`` (one random bit
per step; the simplified weak Euler scheme of Kloeden & Platen 1992, §14.1, same weak order);
``noise="gaussian"`` is the published scheme. ``tests/test_hh.py`` checks that both give the same
feature distribution.

Rates. The six Traub rates need five exponentials of ``u = V - V_T``; they are computed from one,
``b = exp(u / 40)``, by products (``exp(0.2 u) = b⁸``, ``exp(-0.25 u) = b⁻¹⁰``, ``exp(-u / 40) = b⁻¹``),
plus ``exp(-u / 18)``; the M current's ``exp((V + 35) / 20) = b² exp((V_T + 35) / 20)`` (the second
factor is constant per simulation, hoisted out of the loop by XLA); and each gate's steady state and
rate come from one reciprocal (six divisions per step instead of fourteen): relative error below 2e-5
against the direct formulas over -110..60 mV (tested). ``efun(z) = z / (eᶻ - 1)`` uses its Taylor
series for ``|z| < 0.05`` (the published code switches at 1e-4, which float32 cannot resolve).
``b`` passes through ``lax.optimization_barrier``: without it XLA's algebraic simplifier turns the
products back into exponentials (``exp(a) exp(c) → exp(a + c)``, ``1 / exp(a) → exp(-a)``) and
recomputes them inside each gate's fused kernel (13 exponentials per step instead of 8; 16.5k →
20.2k simulations/s with the barrier in a one-off side-by-side comparison, see benchmarks/README.md).

Gate updates. The exponential-Euler factor ``exp(-dt (alpha + beta))`` is a true exponential for V
and m; for h, n and p, whose ``dt (alpha + beta)`` stays below 0.29, 0.05 and 0.21 for every V in
[-120, 80] mV and every prior draw, it is the Taylor polynomial of degree 6, 4 and 6 (absolute error
below 3e-8, half a float32 ulp at 1; ``_DECAY_DEGREE``, tested), which costs a third of ``exp``.

Layout: one ``lax.scan`` over blocks of 1,000 steps (the stimulus is constant within a block), the
carry holding the whole batch; inside a block, steps are scanned in groups whose noise comes from one
uint32 word per group and simulation.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import priors as _priors
from ..features import HHSummary
from ._base import Model, block_noise, simulation_keys

E_NA, E_K, C_M = 53.0, -107.0, 1.0
SOMA_AREA = math.pi * (70e-4) ** 2  # cm²
STEP_AMPLITUDE = 5e-4 / SOMA_AREA  # µA/cm², 3.248

_BLOCK = 1000  # steps per block: the stimulus edges (10 ms, 110 ms) fall on block boundaries
_GROUP = 25  # steps per noise word (25 of its 32 bits used)
_SMALL_Z = 0.05
# Taylor degree of exp(-dt·rate) per gate (m, h, n, p); None: jnp.exp. See the module docstring.
_DECAY_DEGREE = (None, 6, 4, 6)


def _efun_parts(z, ez):
    """``z / (exp(z) - 1)`` as a numerator and a denominator (Taylor series near 0, where the
    difference cancels: then the numerator is the series and the denominator 1)."""
    small = jnp.abs(z) < _SMALL_Z
    return jnp.where(small, 1.0 - z / 2 + z * z / 12, z), jnp.where(small, 1.0, ez - 1.0)


def decay(x, degree: int | None):
    """``exp(-x)``: ``jnp.exp``, or its Taylor polynomial of ``degree`` by Horner's rule (for small ``x``)."""
    if degree is None:
        return jnp.exp(-x)
    acc = jnp.full_like(x, (-1) ** degree / math.factorial(degree))
    for k in range(degree - 1, -1, -1):
        acc = acc * x + (-1) ** k / math.factorial(k)
    return acc


def rates(v, vt, inv_tau_max):
    """``(x_inf, 1 / tau_x)`` of the gates m, h, n, p at membrane potential ``v`` (mV).

    Divisions cost as much as exponentials here, so each gate's ``alpha / (alpha + beta)`` and
    ``alpha + beta`` come from one reciprocal of the product of their denominators, and the three
    exponentials of ``u`` that are powers of ``b = exp(u / 40)`` from one reciprocal of ``b``
    (behind an optimization barrier, see the module docstring).
    """
    dtype = v.dtype
    u = v - vt
    b = lax.optimization_barrier(jnp.exp(u / 40.0))
    b_inv = 1.0 / b
    b_inv2 = b_inv * b_inv
    b_inv8 = (b_inv2 * b_inv2) * (b_inv2 * b_inv2)
    b2 = b * b
    e_beta = (b2 * b2) * (b2 * b2) * jnp.asarray(math.exp(-8.0), dtype)  # exp(0.2 (u - 40))
    # m: alpha = 1.28 efun(z1), beta = 1.4 efun(z2)
    n1, d1 = _efun_parts(-0.25 * (u - 13.0), jnp.asarray(math.exp(3.25), dtype) * b_inv8 * b_inv2)
    n2, d2 = _efun_parts(0.2 * (u - 40.0), e_beta)
    a_m, b_m = 1.28 * n1 * d2, 1.4 * n2 * d1  # alpha, beta times d1 d2
    s_m = a_m + b_m
    q = 1.0 / (s_m * d1 * d2)
    m = (a_m * d1 * d2 * q, s_m * s_m * q)
    # h: alpha = 0.128 exp(-(u - 17) / 18), beta = 4 e / (e + 1) with e = exp(0.2 (u - 40))
    a_h = 0.128 * jnp.exp(-(u - 17.0) / 18.0) * (e_beta + 1.0)  # alpha times (e + 1)
    s_h = a_h + 4.0 * e_beta
    q = 1.0 / (s_h * (e_beta + 1.0))
    h = (a_h * (e_beta + 1.0) * q, s_h * s_h * q)
    # n: alpha = 0.16 efun(z3) with z3 = -0.2 (u - 15), beta = 0.5 exp(-(u - 10) / 40)
    n3, d3 = _efun_parts(-0.2 * (u - 15.0), jnp.asarray(math.exp(3.0), dtype) * b_inv8)
    bn = jnp.asarray(0.5 * math.exp(0.25), dtype) * b_inv
    s_n = 0.16 * n3 + bn * d3  # (alpha + beta) times d3
    q = 1.0 / (s_n * d3)
    n = (0.16 * n3 * d3 * q, s_n * s_n * q)
    # p: p_inf = 1 / (1 + exp(-(v + 35) / 10)), rate = (3.3 exp(w) + exp(-w)) / tau_max, w = (v + 35) / 20
    ew = b2 * jnp.exp((vt + 35.0) / 20.0)  # exp((v + 35) / 20); the second factor is loop-invariant
    ew2 = ew * ew
    q = 1.0 / (ew * (ew2 + 1.0))
    p = (ew2 * ew * q, (3.3 * ew + (ew2 + 1.0) * q) * inv_tau_max)
    return m, h, n, p


class HodgkinHuxley(Model):
    """Hodgkin–Huxley neuron with an M current, the published protocol and features.

    Attributes:
        noise: ``"two-point"`` (default, see module docstring) or ``"gaussian"`` (published).
        n_autocorr: append the stimulus window's autocorrelation at 1..n ms to the 7 features.
        duration, time_step, t_on, t_off, amplitude, v0: the protocol (ms, µA/cm², mV).
        dtype: ``"float32"`` (throughput) or ``"float64"`` (needs ``jax_enable_x64``).

    Example:
        >>> model = HodgkinHuxley()
        >>> x = model.simulate_features(jax.random.key(0), jnp.asarray([model.default_truth]))
    """

    name: ClassVar[str] = "hh"
    per_simulation_keys: ClassVar[bool] = True
    # spline flow, and the moments that span orders of magnitude on a log scale; with the posterior
    # temperature, coverage within 0.05 at 100k (benchmarks/results/hh_calibration_temperature_96k.json)
    infer_defaults: ClassVar[dict] = {"flow": "nsf", "log_features": ("rest_std", "stim_var", "stim_kurtosis")}
    noise: Literal["two-point", "gaussian"] = eqx.field(static=True, default="two-point")
    n_autocorr: int = eqx.field(static=True, default=0)
    duration: float = eqx.field(static=True, default=120.0)
    time_step: float = eqx.field(static=True, default=0.01)
    t_on: float = eqx.field(static=True, default=10.0)
    t_off: float = eqx.field(static=True, default=110.0)
    amplitude: float = eqx.field(static=True, default=STEP_AMPLITUDE)
    v0: float = eqx.field(static=True, default=-70.0)
    dtype: str = eqx.field(static=True, default="float32")

    def __check_init__(self):
        if self.noise not in ("two-point", "gaussian"):
            raise ValueError(f"noise must be 'two-point' or 'gaussian', got {self.noise!r}")
        if not (isinstance(self.n_autocorr, int) and self.n_autocorr >= 0):
            raise ValueError(f"n_autocorr must be a non-negative integer, got {self.n_autocorr!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        steps = self.num_steps
        for name, t in (("t_on", self.t_on), ("t_off", self.t_off)):
            k = t / self.time_step
            if abs(k - round(k)) > 1e-6 or round(k) % _BLOCK or not 0 < round(k) < steps:
                raise ValueError(
                    f"{name} = {t} ms must be a multiple of {_BLOCK} steps ({_BLOCK * self.time_step} ms) "
                    f"inside the {self.duration} ms simulation"
                )
        if steps % _BLOCK:
            raise ValueError(f"duration / time_step = {steps} steps must be a multiple of {_BLOCK}")

    # -- description ---------------------------------------------------------------------
    @property
    def param_names(self):
        return ("gNa", "gK", "gleak", "gM", "tau_max", "minus_VT", "sigma", "minus_Eleak")

    @property
    def param_units(self):
        return ("mS/cm2", "mS/cm2", "mS/cm2", "mS/cm2", "ms", "mV", "uA/cm2", "mV")

    @property
    def prior(self):
        return _priors.box_uniform(
            [0.5, 1e-4, 1e-4, 1e-4, 50.0, 40.0, 1e-4, 35.0], [80.0, 15.0, 0.6, 0.6, 3000.0, 90.0, 0.15, 100.0]
        )

    @property
    def default_truth(self):
        return np.asarray([50.0, 5.0, 0.1, 0.07, 600.0, 60.0, 0.1, 70.0])

    @property
    def channel_names(self):
        return ("V",)

    @property
    def dt(self):
        return self.time_step

    @property
    def num_steps(self) -> int:
        return int(round(self.duration / self.time_step))

    @property
    def trace_shape(self):
        return (1, self.num_steps + 1)

    @property
    def summary(self) -> HHSummary:
        return HHSummary.from_times(self.time_step, self.t_on, self.t_off, n_autocorr=self.n_autocorr)

    @property
    def feature_names(self):
        return tuple(self.summary.names)

    # -- simulation -----------------------------------------------------------------------
    def _step(self, state, theta, current, xi):
        """One exponential-Euler step: V with the gates of the previous step, then the gates at the new V."""
        v, m, h, n, p = state
        g_na, g_k, g_leak, g_m, inv_tau_max, minus_vt, sigma, minus_eleak = theta
        dt = self.time_step
        na = g_na * (m * m * m) * h
        n2 = n * n
        k = g_k * (n2 * n2)
        mk = g_m * p
        g = (na + k + g_leak + mk) / C_M
        drive = na * E_NA + (k + mk) * E_K - g_leak * minus_eleak + current + sigma * xi * (1.0 / math.sqrt(dt))
        v_inf = drive / (g * C_M)
        v = v_inf + (v - v_inf) * jnp.exp(-dt * g)
        gates = []
        for x, (x_inf, rate), degree in zip((m, h, n, p), rates(v, -minus_vt, inv_tau_max), _DECAY_DEGREE):
            gates.append(x_inf + (x - x_inf) * decay(dt * rate, degree))
        return (v, *gates)

    def _run(self, key, theta, record: bool):
        """Integrate; ``record``: the trace ``[steps, batch]`` (rolled loop, one sample per step),
        else the online features ``[batch, 7]`` (groups of ``_GROUP`` unrolled steps, no trace)."""
        dtype = jnp.dtype(self.dtype)
        theta = jnp.asarray(theta, dtype)
        batch = theta.shape[0]
        params = tuple(theta.T)
        params = (*params[:4], 1.0 / params[4], *params[5:])  # the step uses 1 / tau_max
        keys = simulation_keys(key, batch)
        summary = self.summary
        v0 = jnp.full((batch,), self.v0, dtype)
        state = (v0, *(x_inf for x_inf, _ in rates(v0, -params[5], params[4])))
        acc = None if record else summary.online_init(v0)
        n_blocks = self.num_steps // _BLOCK
        on, off = round(self.t_on / self.time_step) // _BLOCK, round(self.t_off / self.time_step) // _BLOCK

        def block(carry, b):
            state, acc = carry
            current = jnp.where((b >= on) & (b < off), jnp.asarray(self.amplitude, dtype), jnp.zeros((), dtype))
            if self.noise == "gaussian":
                xi = block_noise(keys, b, (_BLOCK // _GROUP, _GROUP), "normal", dtype)
            else:  # one bit per step: _GROUP of the 32 bits of a word
                words = block_noise(keys, b, (_BLOCK // _GROUP,), "bits")
                shifts = jnp.arange(_GROUP, dtype=jnp.uint32)[:, None]
                xi = jnp.where((words[:, None, :] >> shifts) & 1, 1.0, -1.0).astype(dtype)
            if record:
                def one(state, xi_step):
                    state = self._step(state, params, current, xi_step)
                    return state, state[0]

                state, v = lax.scan(one, state, xi.reshape(_BLOCK, batch))
                return (state, acc), v

            def group(carry, xs):
                state, acc = carry
                g, xi_group = xs
                vs = []
                for j in range(_GROUP):
                    state = self._step(state, params, current, xi_group[j])
                    vs.append(state[0])
                acc = summary.online_group(acc, vs, b * _BLOCK + g * _GROUP + 1)
                return (state, acc), None

            carry, _ = lax.scan(group, (state, acc), (jnp.arange(_BLOCK // _GROUP), xi))
            return carry, None

        (state, acc), v = lax.scan(block, (state, acc), jnp.arange(n_blocks))
        if record:
            return jnp.concatenate([v0[None], v.reshape(self.num_steps, batch)])
        return summary.online_finish(acc)

    def simulate(self, key, theta):
        """Membrane potential ``[batch, 1, steps + 1]`` (sample 0 is V0)."""
        return self._run(key, theta, record=True).T[:, None, :]

    def simulate_features(self, key, theta):
        """``features(simulate(key, theta))`` computed online, without traces (the autocorrelation
        features need the trace: with ``n_autocorr > 0`` this goes through ``simulate``)."""
        if self.n_autocorr:
            return self.features(self.simulate(key, theta))
        return self._run(key, theta, record=False)

    def features(self, traces):
        return self.summary.batched(traces[:, 0, :])
