"""The pyloric network of the crab stomatogastric ganglion (Prinz, Bucher & Marder 2004), as fitted
by Gonçalves et al. (2020) to preparation 845_082_0044; reference section 3.2.

Three single-compartment neurons, AB/PD (pacemaker, ``PM``), LP and PY, each with eight currents
(Na, CaT, CaS, A, KCa, Kd, H, leak; Liu et al. 1998 kinetics), intracellular calcium with a 200 ms
buffer and a Nernst calcium reversal, and seven graded synapses (Abbott & Marder):

    C dV/dt = -Σ g_i m_i^p h_i (V - E_i) - Σ g_s s (V - E_s) + I_noise
    τ_s ds/dt = s_∞(V_pre) - s,  s_∞ = 1 / (1 + exp((-35 - V_pre) / 5)),  τ_s = k₋ (1 - s_∞)

Integration as published: exponential Euler at dt = 0.025 ms for V, calcium and the gates (the gates
and calcium from the previous step's V), the truncated forward Euler of the published code for the
synapses (``s = s_∞`` when ``dt > τ_s``), 11 s from V = -50 mV, Ca = 0.05 µM and every gate at 0,
statistics on the last 10 s. The per-step current noise has standard deviation 0.001 µA, not scaled
with dt (published). ``noise="two-point"`` (default) draws ±0.001 µA, one random bit per neuron and
step (same mean and variance; 30 bits of one word per 10 steps); ``"gaussian"`` is the published
Gaussian draw.

Parameters (31): the 24 maximal membrane conductances (mS/cm², order Na, CaT, CaS, A, KCa, Kd, H,
leak for PM, LP, PY; multiplied by the membrane area 0.628e-3 cm²) and the natural logarithm of the
seven synaptic conductances (mS): AB→LP, PD→LP, AB→PY, PD→PY, LP→PD, LP→PY, PY→LP (AB→ and LP→
synapses glutamatergic, E = -70 mV, k₋ = 40 ms; PD→ cholinergic, E = -80 mV, k₋ = 100 ms).

Speed. The three synapses from the pacemaker that share a transmitter, and the two from LP, see
the same presynaptic voltage and kinetics from the same initial state, so they share one gating
variable: four synaptic states carry the seven synapses exactly. The neurons are one ``[3, batch]``
array, so each step is one set of elementwise kernels; steps run in unrolled groups of ten
(``GROUP_STEPS``) that write one byte of feature flags per simulation (see
``neurosbi.features._pyloric``), so a simulation leaves 40 kB instead of a 5 MB trace.

Screening. 99 % of the prior gives no triphasic rhythm. ``neurosbi.simulate`` runs every simulation
to ``screen_ms`` (4 s) first and continues, from the saved state and with the same noise, only those
whose rhythm over 1-4 s already has every feature defined: a prior round costs about 0.38 of the
unscreened one. A circuit that becomes pyloric only after 4 s is lost (2 % of those near the
example circuit, ``benchmarks/results/pyloric_screen.json``); it is stored invalid, marked screened.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import priors as _priors
from ..features._pyloric import NEURONS, PLATEAU_THRESHOLD, PyloricSummary, pack_flags, peak_flags
from ._base import Model, block_noise, simulation_keys

AREA = 0.628e-3  # cm²
CAPACITANCE = 0.6283e-3  # µF
E_NA, E_K, E_H, E_LEAK = 50.0, -80.0, -20.0, -50.0
CA_TAU, CA_F, CA_0, CA_EXT = 200.0, 14961.0, 0.05, 3000.0  # ms, µM/µA, µM, µM
RT_OVER_2F = 8.31451e3 * 283.0 / (2 * 96485.3415)  # mV at 10 °C
E_GLUT, K_GLUT, E_CHOL, K_CHOL = -70.0, 40.0, -80.0, 100.0
SYN_VTH, SYN_DELTA = -35.0, 5.0

CURRENTS = ("Na", "CaT", "CaS", "A", "KCa", "Kd", "H", "leak")
SYNAPSES = ("AB_LP", "PD_LP", "AB_PY", "PD_PY", "LP_PD", "LP_PY", "PY_LP")
GROUP_STEPS = 10  # steps per flag byte (0.25 ms)
# A 4 s pilot (1 s burn-in + 3 s) passes 1.6 % of prior draws and 98 % of the circuits near the
# example that are pyloric over the full 11 s; 3 s keeps 73 % (benchmarks/results/pyloric_screen.json)
SCREEN_MS = 4_000.0
_BLOCK_GROUPS = 400  # groups per noise block (100 ms)

# Prior: Prinz et al. 2004 ranges padded as in Gonçalves et al. 2020 (mS/cm²), synapses ln(mS)
_LOW = [
    [0, 0, 0, 0, 0, 25, 0, 0],
    [0, 0, 2, 10, 0, 0, 0, 0.01],
    [0, 0, 0, 30, 0, 50, 0, 0],
]
_HIGH = [
    [500, 7.5, 8, 60, 15, 150, 0.02, 0.01],
    [200, 2.5, 12, 60, 10, 125, 0.06, 0.04],
    [600, 12.5, 4, 60, 5, 150, 0.06, 0.04],
]
_SYN_LOW = [math.log(1e-8)] * 7
_SYN_HIGH = [math.log(1e-2)] + [math.log(1e-3)] * 6

# A pyloric circuit: the prior draw (seed 3, draw 221 of 256) whose rhythm lies closest to preparation
# 845_082_0044 (every rhythm feature within 2.1 experimental standard deviations); the default truth
# for synthetic checks. Rounded to three decimals.
PYLORIC_EXAMPLE = np.asarray(
    [443.609, 2.828, 3.409, 32.815, 8.243, 139.458, 0.013, 0.003]
    + [184.275, 0.098, 10.613, 48.381, 2.688, 98.742, 0.037, 0.022]
    + [588.201, 9.183, 3.578, 52.262, 3.394, 142.688, 0.007, 0.037]
    + [-10.77, -16.976, -11.651, -16.086, -9.908, -17.406, -9.471]
)

# Preparation 845_082_0044 (Gonçalves et al. 2020), the 18 features in PYLORIC_FEATURES order
OBSERVATION_845 = np.asarray(
    [1170.86, 206.04, 214.31, 412.84, 275.16, 42.05, 481.93, 738.28, 0.1760, 0.1830, 0.3526]
    + [0.2350, 0.0359, 0.4116, 0.6305, 2.5, 2.5, 2.5]
)
# Spread of the 15 rhythm features across experimental preparations (Prinz et al. 2004, as used by
# Gonçalves et al. 2020): the "experimental noise unit" for distances to an observation
EXPERIMENTAL_STD = np.asarray(
    [279, 133, 113, 150, 109, 60, 169, 216, 0.040, 0.059, 0.054, 0.065, 0.034, 0.054, 0.060]
)


def _sig(v, half, slope):
    """``1 / (1 + exp((v + half) / slope))``."""
    return 1.0 / (1.0 + _e(v, half, slope))


def _e(v, half, slope):
    return jnp.exp((v + half) * (1.0 / slope))


def _rate(dt, v, c, d, half, slope):
    """``dt / tau`` for ``tau = c + d / (1 + exp((v + half) / slope))``, with one division."""
    one_e = 1.0 + _e(v, half, slope)
    return dt * one_e / (c * one_e + d)


def gates(v, ca, dt):
    """Steady states and ``dt / tau`` of the eleven gates at ``v`` (mV), calcium ``ca`` (µM): a tuple
    of ``(x_inf, dt / tau)`` in the order m_Na, h_Na, m_CaT, h_CaT, m_CaS, h_CaS, m_A, h_A, m_KCa,
    m_Kd, m_H. Each time constant's sigmoid and the division by it share one division (divisions
    cost more than exponentials here)."""
    e1, e2 = 1.0 + _e(v, 62.9, -10.0), 1.0 + _e(v, 34.9, 3.6)
    s_cas_m = _e(v, 27.0, 10.0) + _e(v, 70.0, -13.0)
    s_cas_h = _e(v, 55.0, 9.0) + _e(v, 65.0, -16.0)
    s_h = jnp.exp(-14.59 - 0.086 * v) + jnp.exp(-1.87 + 0.0701 * v)
    return (
        (_sig(v, 25.5, -5.29), _rate(dt, v, 2.64, -2.52, 120.0, -25.0)),
        (_sig(v, 48.9, 5.18), dt * e1 * e2 / (1.34 * (1.5 * e2 + 1.0))),  # tau = 1.34 / e1 (1.5 + 1 / e2)
        (_sig(v, 27.1, -7.2), _rate(dt, v, 43.4, -42.6, 68.1, -20.5)),
        (_sig(v, 32.1, 5.5), _rate(dt, v, 210.0, -179.6, 55.0, -16.9)),
        (_sig(v, 33.0, -8.1), dt * s_cas_m / (2.8 * s_cas_m + 14.0)),  # tau = 2.8 + 14 / s
        (_sig(v, 60.0, 6.2), dt * s_cas_h / (120.0 * s_cas_h + 300.0)),  # tau = 120 + 300 / s
        (_sig(v, 27.2, -8.7), _rate(dt, v, 23.2, -20.8, 32.9, -15.2)),
        (_sig(v, 56.9, 4.9), _rate(dt, v, 77.2, -58.4, 38.9, -26.5)),
        (ca / ((ca + 3.0) * (1.0 + _e(v, 28.3, -12.6))), _rate(dt, v, 180.6, -150.2, 46.0, -22.7)),
        (_sig(v, 12.3, -11.8), _rate(dt, v, 14.4, -12.8, 28.3, -19.2)),
        (_sig(v, 75.0, 5.5), dt * 0.5 * s_h),  # tau = 2 / s
    )


class Pyloric(Model):
    """The 31-parameter pyloric network with the published protocol and features.

    Attributes:
        noise: ``"two-point"`` (default, see module docstring) or ``"gaussian"`` (published).
        noise_std: per-step current noise (µA).
        duration, burn_in, time_step: protocol (ms).
        plateaus: include the three plateau durations (18 features, published) or not (15).
        pyloric_flag: append the pyloric-like flag as a last feature (for evaluation, not training).
        dtype: ``"float32"`` or ``"float64"`` (needs ``jax_enable_x64``).
        screen_ms: ``neurosbi.simulate`` first runs every simulation to this time and finishes
            only those whose rhythm over ``burn_in``..``screen_ms`` already has every feature
            defined; the others are stored invalid, marked screened (default 4,000 ms; ``None``:
            off; used only when ``burn_in < screen_ms < duration``). A finished simulation is
            exactly the unscreened one. ``simulate_features`` never screens.

    Example:
        >>> model = Pyloric()
        >>> x = model.simulate_features(jax.random.key(0), jnp.asarray([model.default_truth]))
    """

    name: ClassVar[str] = "pyloric"
    per_simulation_keys: ClassVar[bool] = True
    # 99 % of the prior is not pyloric: rounds restricted to the predicted-valid region (keeping 90 % of
    # valid parameters doubles the valid share of proposals, benchmarks/results/pyloric_restriction_64k.json),
    # spline flow
    infer_defaults: ClassVar[dict] = {"num_simulations": 20_000, "rounds": 4, "flow": "nsf", "restrict_keep": 0.9}
    noise: Literal["two-point", "gaussian"] = eqx.field(static=True, default="two-point")
    noise_std: float = eqx.field(static=True, default=0.001)
    duration: float = eqx.field(static=True, default=11_000.0)
    burn_in: float = eqx.field(static=True, default=1_000.0)
    time_step: float = eqx.field(static=True, default=0.025)
    plateaus: bool = eqx.field(static=True, default=True)
    pyloric_flag: bool = eqx.field(static=True, default=False)
    dtype: str = eqx.field(static=True, default="float32")
    screen_ms: float | None = eqx.field(static=True, default=SCREEN_MS)

    def __check_init__(self):
        if self.noise not in ("two-point", "gaussian"):
            raise ValueError(f"noise must be 'two-point' or 'gaussian', got {self.noise!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        block = GROUP_STEPS * _BLOCK_GROUPS * self.time_step
        if self.screen_ms is not None:
            k = self.screen_ms / block
            if abs(k - round(k)) > 1e-6 or round(k) < 1:
                raise ValueError(f"screen_ms = {self.screen_ms} ms must be a positive multiple of {block:g} ms, "
                                 "or None for no screening")
        for name, t in (("duration", self.duration), ("burn_in", self.burn_in)):
            k = t / block
            if abs(k - round(k)) > 1e-6 or round(k) < (1 if name == "burn_in" else 2):
                raise ValueError(
                    f"{name} = {t} ms must be a positive multiple of {block:g} ms "
                    f"({GROUP_STEPS * _BLOCK_GROUPS} steps of {self.time_step} ms)"
                )
        if self.burn_in >= self.duration:
            raise ValueError(f"burn_in = {self.burn_in} ms must be shorter than duration = {self.duration} ms")

    # -- description ---------------------------------------------------------------------
    @property
    def param_names(self):
        membrane = tuple(f"g{c}_{n}" for n in NEURONS for c in CURRENTS)
        return membrane + tuple(f"log_g_{s}" for s in SYNAPSES)

    @property
    def param_units(self):
        return ("mS/cm2",) * 24 + ("log mS",) * 7

    @property
    def prior(self):
        return _priors.box_uniform(
            np.concatenate([np.ravel(_LOW), _SYN_LOW]), np.concatenate([np.ravel(_HIGH), _SYN_HIGH])
        )

    @property
    def default_truth(self):
        return PYLORIC_EXAMPLE.copy()

    @property
    def observation(self) -> np.ndarray:
        """The features of preparation 845_082_0044 (Gonçalves et al. 2020), this model's layout."""
        x = OBSERVATION_845 if self.plateaus else OBSERVATION_845[:15]
        return np.append(x, 1.0) if self.pyloric_flag else x.copy()

    @property
    def experimental_std(self) -> np.ndarray:
        """Across-preparation standard deviation of the 15 rhythm features (Prinz et al. 2004)."""
        return EXPERIMENTAL_STD.copy()

    @property
    def feature_scale(self) -> np.ndarray:
        """The experimental standard deviations for the 15 rhythm features, NaN for the rest."""
        return np.concatenate([EXPERIMENTAL_STD, np.full(len(self.feature_names) - 15, np.nan)])

    @property
    def channel_names(self):
        return tuple(f"V_{n}" for n in NEURONS)

    @property
    def dt(self):
        return self.time_step

    @property
    def num_steps(self) -> int:
        return int(round(self.duration / self.time_step))

    @property
    def burn_in_steps(self) -> int:
        return int(round(self.burn_in / self.time_step))

    @property
    def trace_shape(self):
        return (3, self.num_steps + 1)

    @property
    def summary(self) -> PyloricSummary:
        return PyloricSummary(
            group_ms=GROUP_STEPS * self.time_step,
            group_steps=GROUP_STEPS,
            num_groups=(self.num_steps - self.burn_in_steps) // GROUP_STEPS,
            plateaus=self.plateaus,
            pyloric_flag=self.pyloric_flag,
        )

    @property
    def feature_names(self):
        return self.summary.names

    # -- simulation -----------------------------------------------------------------------
    def _step(self, state, params, noise):
        """One step: V and calcium from the previous gates; gates and synapses from the previous V."""
        v, ca, x, s = state
        g, g_syn = params  # [8, 3, B] mS; [7, B] mS
        dt = self.time_step
        m_na, h_na, m_cat, h_cat, m_cas, h_cas, m_a, h_a, m_kca, m_kd, m_h = x
        cube = lambda m: m * m * m  # noqa: E731
        c_na = g[0] * cube(m_na) * h_na
        c_ca = g[1] * cube(m_cat) * h_cat + g[2] * cube(m_cas) * h_cas
        c_k = g[3] * cube(m_a) * h_a + g[4] * (m_kca * m_kca) ** 2 + g[5] * (m_kd * m_kd) ** 2
        c_h = g[6] * m_h
        e_ca = RT_OVER_2F * (math.log(CA_EXT) - jnp.log(ca))
        ca_inf = CA_0 - CA_F * c_ca * (v - e_ca)
        ca_new = ca_inf + (ca - ca_inf) * math.exp(-dt / CA_TAU)

        # synapses: s = (PM glutamate, PM acetylcholine, LP glutamate, PY glutamate)
        s_pm_glu, s_pm_ach, s_lp_glu, s_py_glu = s
        syn_g = jnp.stack(
            [
                g_syn[4] * s_lp_glu,
                g_syn[0] * s_pm_glu + g_syn[1] * s_pm_ach + g_syn[6] * s_py_glu,
                g_syn[2] * s_pm_glu + g_syn[3] * s_pm_ach + g_syn[5] * s_lp_glu,
            ]
        )
        syn_drive = jnp.stack(
            [
                g_syn[4] * s_lp_glu * E_GLUT,
                (g_syn[0] * s_pm_glu + g_syn[6] * s_py_glu) * E_GLUT + g_syn[1] * s_pm_ach * E_CHOL,
                (g_syn[2] * s_pm_glu + g_syn[5] * s_lp_glu) * E_GLUT + g_syn[3] * s_pm_ach * E_CHOL,
            ]
        )
        total = syn_g + c_na + c_ca + c_k + c_h + g[7]
        drive = syn_drive + c_na * E_NA + c_ca * e_ca + c_k * E_K + c_h * E_H + g[7] * E_LEAK + noise
        # V relaxes to drive / total with rate total / C; written with expm1 so that a tiny total
        # conductance (all gates closed, no leak) neither divides by zero nor cancels in float32
        z = total * (dt / CAPACITANCE)
        phi = jnp.where(z < 1e-4, 1.0 - 0.5 * z, -jnp.expm1(-z) / jnp.where(z < 1e-4, 1.0, z))
        v_new = v + (drive - total * v) * (dt / CAPACITANCE) * phi

        x_new = tuple(
            x_inf + (xi - x_inf) * jnp.exp(-rate) for xi, (x_inf, rate) in zip(x, gates(v, ca, dt))
        )
        e = jnp.exp((SYN_VTH - v) * (1.0 / SYN_DELTA))  # per presynaptic neuron
        s_inf = 1.0 / (1.0 + e)

        def synapse(s_old, pre, k_minus):
            rate = dt * (1.0 + e[pre]) / (k_minus * e[pre])  # dt / tau_s
            return jnp.where(rate > 1.0, s_inf[pre], s_old + (s_inf[pre] - s_old) * rate)

        s_new = (
            synapse(s_pm_glu, 0, K_GLUT),
            synapse(s_pm_ach, 0, K_CHOL),
            synapse(s_lp_glu, 1, K_GLUT),
            synapse(s_py_glu, 2, K_GLUT),
        )
        return v_new, ca_new, x_new, s_new

    def _params(self, theta):
        dtype = jnp.dtype(self.dtype)
        theta = jnp.asarray(theta, dtype)
        batch = theta.shape[0]
        g = (theta[:, :24].reshape(batch, 3, 8) * AREA).transpose(2, 1, 0)  # [8, 3, B]
        return g, jnp.exp(theta[:, 24:]).T

    def _initial(self, batch: int):
        """``(state, v_before)`` at t = 0: V = -50 mV, Ca = 0.05 µM, gates and synapses at 0."""
        dtype = jnp.dtype(self.dtype)
        v0 = jnp.full((3, batch), E_LEAK, dtype)
        zeros = jnp.zeros((3, batch), dtype)
        state = (v0, jnp.full((3, batch), CA_0, dtype), (zeros,) * 11, (jnp.zeros((batch,), dtype),) * 4)
        return state, v0

    def _integrate(self, keys, params, carry, first: int, last: int, record: bool):
        """Noise blocks ``first`` to ``last - 1`` from ``carry``: the carry after them, the flags
        ``[groups, batch]`` (uint8) and, with ``record``, the trace ``[steps, 3, batch]``. Block ``b``
        draws its noise from ``fold_in(keys[j], b)``, so a run split in two is the same run."""
        dtype = jnp.dtype(self.dtype)
        batch = keys.shape[0]
        scale = jnp.asarray(self.noise_std, dtype)

        def block(carry, b):
            if self.noise == "gaussian":
                noise = block_noise(keys, b, (_BLOCK_GROUPS, GROUP_STEPS, 3), "normal", dtype) * scale
            else:  # bit 3 j + n of a group's word: the sign of neuron n's noise at step j
                words = block_noise(keys, b, (_BLOCK_GROUPS,), "bits")[:, None, None, :]
                shifts = (3 * jnp.arange(GROUP_STEPS, dtype=jnp.uint32)[:, None] + jnp.arange(3, dtype=jnp.uint32))
                noise = jnp.where((words >> shifts[..., None]) & 1, scale, -scale)

            def group(carry, noise_group):
                state, v_before = carry
                spiked = jnp.zeros((3, batch), bool)
                trace = []
                for j in range(GROUP_STEPS):
                    v_old = state[0]
                    state = self._step(state, params, noise_group[j])
                    spiked = spiked | peak_flags(v_before, v_old, state[0])
                    v_before = v_old
                    trace.append(state[0])
                flags = pack_flags(spiked, state[0] > PLATEAU_THRESHOLD)
                out = (flags, jnp.stack(trace)) if record else flags
                return (state, v_before), out

            return lax.scan(group, carry, noise)

        carry, out = lax.scan(block, carry, jnp.arange(first, last))
        flags = (out[0] if record else out).reshape(-1, batch)
        trace = out[1].reshape(-1, 3, batch) if record else None
        return carry, flags, trace

    def _run(self, key, theta, record: bool):
        """Integrate; ``record``: also the trace ``[steps + 1, 3, batch]``. Always the flags
        ``[groups, batch]`` (uint8, analysis window only)."""
        batch = theta.shape[0]
        keys = simulation_keys(key, batch)
        carry = self._initial(batch)
        _, flags, trace = self._integrate(keys, self._params(theta), carry, 0, self._blocks(self.duration), record)
        flags = flags[self._blocks(self.burn_in) * _BLOCK_GROUPS :]
        if record:
            return flags, jnp.concatenate([carry[1][None], trace])
        return flags, None

    def _blocks(self, t: float) -> int:
        return int(round(t / (GROUP_STEPS * _BLOCK_GROUPS * self.time_step)))

    # -- screening (see ``Model.screens``) ------------------------------------------------
    @property
    def screens(self) -> bool:
        return self.screen_ms is not None and self.burn_in < self.screen_ms < self.duration

    def pilot(self, keys, theta):
        """The first ``screen_ms`` of each simulation: its state then (batch first) and whether its
        rhythm over ``burn_in``..``screen_ms`` already has every feature defined."""
        batch = theta.shape[0]
        carry, flags, _ = self._integrate(keys, self._params(theta), self._initial(batch), 0,
                                          self._blocks(self.screen_ms), False)
        flags = flags[self._blocks(self.burn_in) * _BLOCK_GROUPS :]
        window = dataclasses.replace(self.summary, num_groups=flags.shape[0], pyloric_flag=False)
        passed = jnp.all(jnp.isfinite(window.from_flags(flags.T)), axis=1)
        state = jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), (carry, flags))
        return state, passed

    def resume(self, keys, theta, state):
        """The features of the whole run, from ``pilot``'s state: the same numbers as
        ``simulate_features`` with the same keys."""
        carry, pilot_flags = jax.tree.map(lambda a: jnp.moveaxis(a, 0, -1), state)
        _, flags, _ = self._integrate(keys, self._params(theta), carry, self._blocks(self.screen_ms),
                                      self._blocks(self.duration), False)
        return self.summary.from_flags(jnp.concatenate([pilot_flags, flags]).T)

    def simulate(self, key, theta):
        """Membrane potentials ``[batch, 3, steps + 1]`` (AB/PD, LP, PY; sample 0 is the initial state)."""
        return self._run(key, theta, record=True)[1].transpose(2, 1, 0)

    def simulate_features(self, key, theta):
        """``features(simulate(key, theta))`` without keeping traces (flags written as it runs)."""
        flags, _ = self._run(key, theta, record=False)
        return self.summary.from_flags(flags.T)

    def features(self, traces):
        """The features of traces ``[batch, 3, steps + 1]`` laid out as ``simulate`` returns them."""
        return self.summary.from_flags(self.summary.flags_from_traces(traces, self.burn_in_steps))
