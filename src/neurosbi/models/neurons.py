"""Point-neuron and population models under one protocol, for comparing models (seed 000, Q1 and Q2).

Every model here is driven by the same protocol: ``duration`` 1,000 ms, a step of amplitude ``drive``
(a parameter, in the model's own units) on ``[t_on, t_off)`` = [100, 900) ms, and a noise current of
intensity ``sigma`` (a parameter) on the potential. Euler–Maruyama at 0.1 ms; every model returns the
same two channels every 1 ms: its potential (``v``; the excitatory activity for Wilson–Cowan) and its
spike count per bin (``spikes``), so the spike-train features (``features.SpikeSummary``) are the
same quantities for all and a classifier can be asked which model made a recording.

    LIF           τ dv/dt = −(v − E_L) + drive,          v ≥ −50 → −65, refractory t_ref
    QIF           τ dv/dt = (v − v_r)(v − v_t)/k + drive,  v ≥ 20 → v_reset
    AdEx          C dv/dt = −g_L(v − E_L) + g_L Δ_T e^{(v − V_T)/Δ_T} − w + drive,
                  τ_w dw/dt = a(v − E_L) − w,            v ≥ V_T + 5Δ_T → E_L, w += b  (Brette & Gerstner 2005)
    Izhikevich    dv/dt = 0.04v² + 5v + 140 − u + drive,  du/dt = a(bv − u),  v ≥ 30 → c, u += d  (Izhikevich 2003)
    FitzHugh–Nagumo  dv/dt = v − v³/3 − w + drive,  dw/dt = ε(v + a − 0.8w)   (time in ms; spikes: v up through 1)
    Wilson–Cowan  τ dE/dt = −E + (1 − E) S_e(c_ee E − c_ei I + drive),  τ dI/dt = −I + (1 − I) S_i(15E − 3I)
                  (Wilson & Cowan 1972); spikes of one neuron of the E population: Poisson at 100 Hz × E.

Noise: ``noise="white"`` adds ``sigma √dt ξ`` to the potential each step; ``noise="colored"`` passes the
same white noise through an Ornstein–Uhlenbeck filter of time constant ``noise_tau`` (unit gain, so it
tends to the white case as ``noise_tau`` → 0): a change of noise model at equal intensity, for the
robustness studies. Noise is drawn per simulation from its own key (``per_simulation_keys``).

Layout as in the mean-field model: a ``lax.scan`` over blocks of records whose carry holds the whole
batch, an inner scan over the records of a block, the steps of a record unrolled; the Gaussian noise of
a block drawn at once.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..features._spikes import SpikeSummary
from ._base import BoxModel, RecordedModel, block_noise, simulation_keys

_BLOCK_RECORDS = 50  # records (ms) per noise draw


class SpikingModel(BoxModel, RecordedModel):
    """The shared protocol, integrator and spike features. Subclasses give parameters, prior bounds,
    the initial state, the drift and the spike rule.

    Attributes:
        duration, t_on, t_off: protocol in ms (1,000; step on [100, 900)).
        time_step, record_step: integration and sampling steps in ms (0.1 and 1).
        noise: ``"white"`` or ``"colored"`` (Ornstein–Uhlenbeck, time constant ``noise_tau`` ms).
        voltage_features: append the potential's mean and std before and during the step to the
            8 spike-train features (off by default: potentials have model-specific units).
    """

    per_simulation_keys: ClassVar[bool] = True
    _potential: ClassVar[str] = "v"

    duration: float = eqx.field(static=True, default=1000.0)
    t_on: float = eqx.field(static=True, default=100.0)
    t_off: float = eqx.field(static=True, default=900.0)
    time_step: float = eqx.field(static=True, default=0.1)
    record_step: float = eqx.field(static=True, default=1.0)
    noise: Literal["white", "colored"] = eqx.field(static=True, default="white")
    noise_tau: float = eqx.field(static=True, default=5.0)
    voltage_features: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.noise not in ("white", "colored"):
            raise ValueError(f"noise must be 'white' or 'colored', got {self.noise!r}")
        ratio = self.record_step / self.time_step
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError(f"record_step {self.record_step} must be a multiple of time_step {self.time_step}")
        records = self.duration / self.record_step
        if abs(records - round(records)) > 1e-6 or round(records) % _BLOCK_RECORDS:
            raise ValueError(
                f"duration {self.duration} ms must be a multiple of {_BLOCK_RECORDS * self.record_step} ms"
            )
        if not 0 < self.t_on < self.t_off <= self.duration:
            raise ValueError(f"need 0 < t_on < t_off <= duration, got {self.t_on}, {self.t_off}, {self.duration}")
        if not self.noise_tau > 0:
            raise ValueError(f"noise_tau must be positive, got {self.noise_tau}")

    # -- description -----------------------------------------------------------------------
    @property
    def channel_names(self):
        return (self._potential, "spikes")

    @property
    def summary(self) -> SpikeSummary:
        return SpikeSummary(
            dt=self.record_step, t_on=self.t_on, t_off=self.t_off, spike_channel=1,
            voltage_channel=0 if self.voltage_features else None,
        )

    @property
    def feature_names(self):
        return self.summary.names

    def features(self, traces):
        return self.summary(traces)

    # -- what a subclass defines ------------------------------------------------------------
    def _init(self, theta):
        """Initial state: a tuple of ``[batch]`` arrays, the potential first."""
        raise NotImplementedError

    def _drift(self, state, current, theta):
        """Time derivatives (per ms) of every state variable; ``current`` = drive × stimulus on."""
        raise NotImplementedError

    def _spike(self, state, theta):
        """``(fired [batch] bool, state)`` after a step: detect spikes and apply the reset."""
        raise NotImplementedError

    def _column(self, theta, name):
        return theta[:, self._names.index(name)]

    # -- simulation -------------------------------------------------------------------------
    def simulate(self, key, theta):
        """Traces ``[batch, 2, records]``: the potential sampled and the spikes counted every ``record_step``."""
        dtype = jnp.float32
        theta = jnp.asarray(theta, dtype)
        batch = theta.shape[0]
        keys = simulation_keys(key, batch)
        dt = self.time_step
        steps = int(round(self.record_step / dt))
        sigma = self._column(theta, "sigma") * jnp.sqrt(jnp.asarray(dt, dtype))
        drive = self._column(theta, "drive")
        on, off = round(self.t_on / self.record_step), round(self.t_off / self.record_step)
        colored = self.noise == "colored"
        decay = float(np.exp(-dt / self.noise_tau))

        def record(carry, xs):
            state, ou = carry
            index, noise = xs  # noise [steps, batch]
            current = jnp.where((index >= on) & (index < off), drive, 0.0)
            count = jnp.zeros((batch,), dtype)
            for k in range(steps):
                derivative = self._drift(state, current, theta)
                state = tuple(s + dt * d for s, d in zip(state, derivative))
                if colored:  # unit-gain OU: ∫ou dt has the white noise's intensity for long times
                    ou = ou * decay + (1.0 - decay) * sigma * noise[k] / dt
                    kick = ou * dt
                else:
                    kick = sigma * noise[k]
                state = (state[0] + kick, *state[1:])
                fired, state = self._spike(state, theta)
                count = count + fired.astype(dtype)
            return (state, ou), (state[0], count)

        def block(carry, b):
            noise = block_noise(keys, b, (_BLOCK_RECORDS, steps), "normal", dtype)  # [records, steps, batch]
            indices = b * _BLOCK_RECORDS + jnp.arange(_BLOCK_RECORDS)
            return jax.lax.scan(record, carry, (indices, noise))

        carry = (self._init(theta), jnp.zeros((batch,), dtype))
        _, (potential, spikes) = jax.lax.scan(block, carry, jnp.arange(self.num_records // _BLOCK_RECORDS))
        traces = jnp.stack([potential.reshape(-1, batch), spikes.reshape(-1, batch)], axis=1)
        return self._post(keys, jnp.transpose(traces, (2, 1, 0)), theta)

    def _post(self, keys, traces, theta):
        """Traces after integration (Wilson–Cowan draws its spikes here)."""
        return traces


class LIF(SpikingModel):
    """Leaky integrate-and-fire neuron (E_L −65 mV, threshold −50 mV, reset −65 mV, refractory t_ref)."""

    name: ClassVar[str] = "lif"
    _names = ("tau_m", "drive", "sigma", "t_ref")
    _units = ("ms", "mV", "mV/√ms", "ms")
    _low = (5.0, 10.0, 0.2, 1.0)
    _high = (40.0, 40.0, 2.0, 5.0)
    _truth = (20.0, 20.0, 1.0, 2.0)

    def _init(self, theta):
        return (jnp.full(theta.shape[:1], -65.0), jnp.zeros(theta.shape[:1]))

    def _drift(self, state, current, theta):
        v, left = state
        return ((-(v + 65.0) + current) / self._column(theta, "tau_m"), -jnp.ones_like(left))

    def _spike(self, state, theta):
        v, left = state
        refractory = left > 0
        fired = (v >= -50.0) & ~refractory
        v = jnp.where(fired | refractory, -65.0, v)
        left = jnp.where(fired, self._column(theta, "t_ref"), left)
        return fired, (v, left)


class QIF(SpikingModel):
    """Quadratic integrate-and-fire neuron in mV (rest −65, threshold −50, curvature 1/15 mV, peak 20 mV)."""

    name: ClassVar[str] = "qif"
    _names = ("tau_m", "drive", "sigma", "v_reset")
    _units = ("ms", "mV", "mV/√ms", "mV")
    _low = (5.0, 0.0, 0.2, -75.0)
    _high = (40.0, 20.0, 2.0, -55.0)
    _truth = (20.0, 8.0, 1.0, -70.0)

    def _init(self, theta):
        return (jnp.full(theta.shape[:1], -65.0),)

    def _drift(self, state, current, theta):
        (v,) = state
        return (((v + 65.0) * (v + 50.0) / 15.0 + current) / self._column(theta, "tau_m"),)

    def _spike(self, state, theta):
        (v,) = state
        fired = v >= 20.0
        return fired, (jnp.where(fired, self._column(theta, "v_reset"), v),)


class AdEx(SpikingModel):
    """Adaptive exponential integrate-and-fire (Brette & Gerstner 2005: C 281 pF, g_L 30 nS,
    E_L −70.6 mV, V_T −50.4 mV, Δ_T 2 mV); ``drive`` in pA, ``sigma`` in mV/√ms."""

    name: ClassVar[str] = "adex"
    _names = ("a", "b", "tau_w", "drive", "sigma")
    _units = ("nS", "pA", "ms", "pA", "mV/√ms")
    _low = (0.0, 0.0, 20.0, 300.0, 0.2)
    _high = (8.0, 150.0, 300.0, 1000.0, 2.0)
    _truth = (4.0, 80.5, 144.0, 800.0, 1.0)

    def _init(self, theta):
        return (jnp.full(theta.shape[:1], -70.6), jnp.zeros(theta.shape[:1]))

    def _drift(self, state, current, theta):
        v, w = state
        exp_term = 60.0 * jnp.exp(jnp.minimum((v + 50.4) / 2.0, 20.0))  # g_L Δ_T e^{(v − V_T)/Δ_T}
        dv = (-30.0 * (v + 70.6) + exp_term - w + current) / 281.0
        dw = (self._column(theta, "a") * (v + 70.6) - w) / self._column(theta, "tau_w")
        return dv, dw

    def _spike(self, state, theta):
        v, w = state
        fired = v >= -40.4
        return fired, (jnp.where(fired, -70.6, v), jnp.where(fired, w + self._column(theta, "b"), w))


class Izhikevich(SpikingModel):
    """Izhikevich (2003) neuron; (a, b, c, d) span regular spiking, bursting, chattering, fast spiking."""

    name: ClassVar[str] = "izhikevich"
    _names = ("a", "b", "c", "d", "drive", "sigma")
    _units = ("1/ms", "", "mV", "mV/ms", "mV/ms", "mV/√ms")
    _low = (0.01, 0.15, -70.0, 0.05, 2.0, 0.2)
    _high = (0.1, 0.3, -45.0, 8.0, 15.0, 2.0)
    _truth = (0.02, 0.2, -65.0, 8.0, 10.0, 1.0)

    def _init(self, theta):
        v = jnp.full(theta.shape[:1], -65.0)
        return (v, self._column(theta, "b") * v)

    def _drift(self, state, current, theta):
        v, u = state
        dv = 0.04 * v * v + 5.0 * v + 140.0 - u + current
        du = self._column(theta, "a") * (self._column(theta, "b") * v - u)
        return dv, du

    def _spike(self, state, theta):
        v, u = state
        fired = v >= 30.0
        v = jnp.where(fired, self._column(theta, "c"), v)
        return fired, (v, jnp.where(fired, u + self._column(theta, "d"), u))


class FitzHughNagumo(SpikingModel):
    """FitzHugh–Nagumo (b = 0.8; time in ms): a spike is v rising through 1, re-armed below 0."""

    name: ClassVar[str] = "fhn"
    _names = ("a", "epsilon", "drive", "sigma")
    _units = ("", "1/ms", "", "1/√ms")
    _low = (0.5, 0.02, 0.0, 0.01)
    _high = (0.9, 0.2, 1.5, 0.2)
    _truth = (0.7, 0.08, 0.8, 0.05)

    def _init(self, theta):
        shape = theta.shape[:1]
        return (jnp.full(shape, -1.2), jnp.full(shape, -0.62), jnp.ones(shape))  # v, w, armed

    def _drift(self, state, current, theta):
        v, w, armed = state
        dv = v - v**3 / 3.0 - w + current
        dw = self._column(theta, "epsilon") * (v + self._column(theta, "a") - 0.8 * w)
        return dv, dw, jnp.zeros_like(armed)

    def _spike(self, state, theta):
        v, w, armed = state
        fired = (armed > 0.5) & (v >= 1.0)
        armed = jnp.where(fired, 0.0, jnp.where(v < 0.0, 1.0, armed))
        return fired, (v, w, armed)


class WilsonCowan(SpikingModel):
    """Wilson–Cowan E–I population (1972 constants: c_ie 15, c_ii 3, a_e 1.3, θ_e 4, a_i 2, θ_i 3.7,
    τ 10 ms); channel ``E`` is the excitatory activity (kept in [0, 1] after each noisy step),
    ``spikes`` one E neuron firing as a Poisson process at 100 Hz × E."""

    name: ClassVar[str] = "wilson-cowan"
    _names = ("c_ee", "c_ei", "drive", "sigma")
    _units = ("", "", "", "1/√ms")
    _low = (10.0, 8.0, 0.0, 0.005)
    _high = (20.0, 16.0, 3.0, 0.05)
    _truth = (16.0, 12.0, 1.25, 0.02)
    _potential = "E"

    @staticmethod
    def _sigmoid(x, a, theta):
        return 1.0 / (1.0 + jnp.exp(-a * (x - theta))) - 1.0 / (1.0 + np.exp(a * theta))

    def _init(self, theta):
        return (jnp.zeros(theta.shape[:1]), jnp.zeros(theta.shape[:1]))

    def _drift(self, state, current, theta):
        e, i = state
        inp = self._column(theta, "c_ee") * e - self._column(theta, "c_ei") * i + current
        de = (-e + (1.0 - e) * self._sigmoid(inp, 1.3, 4.0)) / 10.0
        di = (-i + (1.0 - i) * self._sigmoid(15.0 * e - 3.0 * i, 2.0, 3.7)) / 10.0
        return de, di

    def _spike(self, state, theta):
        e, i = state
        return jnp.zeros(e.shape, bool), (jnp.clip(e, 0.0, 1.0), i)

    def _post(self, keys, traces, theta):
        rate = 0.1 * traces[:, 0] * self.record_step  # 100 Hz × E, spikes per bin
        spikes = jax.vmap(lambda k, lam: jax.random.poisson(jax.random.fold_in(k, 1_000_003), lam))(keys, rate)
        return traces.at[:, 1].set(spikes.astype(traces.dtype))


FAMILY: dict[str, type[SpikingModel]] = {
    m.name: m for m in (LIF, QIF, AdEx, Izhikevich, FitzHughNagumo, WilsonCowan)
}
