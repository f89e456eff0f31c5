"""An all-to-all network of quadratic integrate-and-fire neurons: the microscopic model behind MPR.

Reference section 2.7 (Baldy et al. 2024, after Montbrió, Pazó & Roxin 2015). Neuron ``i``:

    τ_m dv_i/dt = v_i² + η_i + J s(t) + I(t),       τ_m = 1 (the model's time unit, "s")

with ``η_i`` Lorentzian (centre η, half-width Δ), ``s`` the population rate filtered by an exponential
synapse of time constant ``tau_syn`` (1 ms) after a delay (1 ms): each spike adds
``(1 − e^{−dt/tau_syn})/(N dt)`` ≈ ``1/(N tau_syn)`` to ``s``, which then decays exactly, so that one
spike's charge ∫s dt is exactly 1/N and ``s`` has the units of a rate. A neuron whose potential reaches ``v_peak`` (100) is held for
the refractory time ``2/v_peak`` (the time the true QIF takes from ``v_peak`` to +∞ and back from −∞ to
``−v_peak``), emits its spike half-way through, the moment the true QIF would blow up, and resumes at
``−v_peak``. All neurons start at v = −3; the published step current (3 on [30, 60)) drives them.

Heterogeneity: ``"quantile"`` (default) puts ``η_i = η + Δ tan(π/2 (2i − N − 1)/(N + 1))``, the
deterministic Lorentzian quantiles of Montbrió et al. 2015 that remove sampling noise from the
finite population; ``"random"`` draws ``η + Δ·Cauchy`` from the simulation's key. (The published Brian2
script writes ``(cauchy + η) Δ``, a Lorentzian centred on ηΔ = −3.22 instead of η = −4.6 while it
stores η = −4.6 as the truth; this model uses the centre the paper states.)

Outputs, every ``record_step`` (1 ms, the mean field's sampling): channel ``v``, the mean potential of
the neurons not in their refractory period (the centre of the Lorentzian of potentials, which is what
MPR's v is; refractory neurons sit at ±∞ in the true QIF), and channel ``r``, the population rate
(spikes per neuron per unit time) smoothed with a flat window of ``rate_window`` (10 ms, Brian's
``smooth_rate(window="flat")``). Traces have the shape and the features of ``Montbrio``'s, so network
data can be handed to mean-field inference unchanged (``mean_field()`` is the matching MPR model).

Why hand-written rather than Brian2: the network has to run inside the same JAX pipeline as the
inference (batched, keyed, on any device), and one time step is seven vectorised operations over the
neurons plus one count; Euler at dt = 0.1 ms (Brian's default step) runs 10^4 neurons for 100 s in
about 10 s on 2 CPU cores (``benchmarks/qif_network.py``). Brian2 stays an optional cross-check.

Layout: an outer ``lax.scan`` over records (1 ms) and an inner one over the 10 steps of a record; the
spike count of each step enters ``s`` ``delay`` later through a ring buffer in the carry.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import RecordedModel, simulation_keys
from .montbrio import Montbrio


def lorentzian_quantiles(n: int, center, width):
    """``center + width tan(π/2 (2i − n − 1)/(n + 1))`` for i = 1..n: n evenly spaced Lorentzian quantiles."""
    i = jnp.arange(1, n + 1)
    return center + width * jnp.tan(0.5 * jnp.pi * (2 * i - n - 1) / (n + 1))


class QIFNetwork(RecordedModel):
    """All-to-all QIF network whose population rate and mean potential MPR describes.

    Parameters (Δ, η, J) and prior are ``Montbrio``'s; so are the trace layout (v, r at 1 ms) and the
    features. ``n_neurons`` 10^4 as published.

    Attributes:
        n_neurons: network size N.
        heterogeneity: ``"quantile"`` (deterministic Lorentzian quantiles) or ``"random"`` (Cauchy draws).
        time_step: integration step (1e-4, Brian2's default 0.1 ms).
        record_step: sampling step of the traces (1e-3, must be a multiple of ``time_step``).
        v_peak: threshold; reset to ``−v_peak``, refractory ``2/v_peak``.
        tau_syn, delay: synaptic time constant and transmission delay (1e-3 each).
        rate_window: width of the flat window smoothing the rate (1e-2).
        duration, t_on, t_off, amplitude, v0: the protocol, as ``Montbrio``.

    Example:
        >>> net = QIFNetwork(n_neurons=2000, duration=10.0, t_on=3.0, t_off=6.0)
        >>> traces = net.simulate(jax.random.key(0), jnp.asarray([[0.7, -4.6, 14.5]]))  # [1, 2, 10000]
    """

    name: ClassVar[str] = "qif-network"
    per_simulation_keys: ClassVar[bool] = True
    n_neurons: int = eqx.field(static=True, default=10_000)
    heterogeneity: Literal["quantile", "random"] = eqx.field(static=True, default="quantile")
    time_step: float = eqx.field(static=True, default=1e-4)
    record_step: float = eqx.field(static=True, default=1e-3)
    v_peak: float = eqx.field(static=True, default=100.0)
    tau_syn: float = eqx.field(static=True, default=1e-3)
    delay: float = eqx.field(static=True, default=1e-3)
    rate_window: float = eqx.field(static=True, default=1e-2)
    duration: float = eqx.field(static=True, default=100.0)
    t_on: float = eqx.field(static=True, default=30.0)
    t_off: float = eqx.field(static=True, default=60.0)
    amplitude: float = eqx.field(static=True, default=3.0)
    v0: float = eqx.field(static=True, default=-3.0)

    def __check_init__(self):
        if not (isinstance(self.n_neurons, int) and self.n_neurons >= 2):
            raise ValueError(f"n_neurons must be an integer >= 2, got {self.n_neurons!r}")
        if self.heterogeneity not in ("quantile", "random"):
            raise ValueError(f"heterogeneity must be 'quantile' or 'random', got {self.heterogeneity!r}")
        for name in ("record_step", "delay", "rate_window"):
            ratio = getattr(self, name) / self.time_step
            if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
                raise ValueError(
                    f"{name} = {getattr(self, name)} must be a positive multiple of time_step = {self.time_step}"
                )
        if round(self.rate_window / self.record_step) < 1:
            raise ValueError(f"rate_window {self.rate_window} is shorter than record_step {self.record_step}")
        if round(2 / self.v_peak / self.time_step) < 2:
            raise ValueError(
                f"the refractory time 2/v_peak = {2 / self.v_peak:g} must span at least 2 steps of {self.time_step}"
            )

    # -- description: Montbrio's -----------------------------------------------------------
    def mean_field(self) -> Montbrio:
        """The deterministic MPR model with this network's protocol and trace layout."""
        return Montbrio(
            noise_sigma=0.0, duration=self.duration, time_step=self.record_step, t_on=self.t_on,
            t_off=self.t_off, amplitude=self.amplitude, v0=self.v0,
        )

    @property
    def param_names(self):
        return self.mean_field().param_names

    @property
    def prior(self):
        return self.mean_field().prior

    @property
    def default_truth(self):
        return self.mean_field().default_truth

    @property
    def channel_names(self):
        return ("v", "r")

    @property
    def feature_names(self):
        return self.mean_field().feature_names

    def features(self, traces):
        return self.mean_field().features(traces)

    # -- simulation -------------------------------------------------------------------------
    def simulate(self, key, theta):
        """Traces ``[batch, 2, records]`` (mean potential v, smoothed rate r), one network per row of theta."""
        theta = jnp.asarray(theta, jnp.float32)
        keys = simulation_keys(key, theta.shape[0])
        return jax.vmap(self._one)(keys, theta)

    def _one(self, key, theta):
        n, dt = self.n_neurons, self.time_step
        delta, eta_bar, coupling = theta[0], theta[1], theta[2]
        if self.heterogeneity == "quantile":
            eta = lorentzian_quantiles(n, eta_bar, delta).astype(jnp.float32)
        else:
            eta = eta_bar + delta * jax.random.cauchy(key, (n,), jnp.float32)
        steps_per_record = int(round(self.record_step / dt))
        lag = int(round(self.delay / dt))
        hold = int(round(2.0 / self.v_peak / dt))  # refractory steps; the spike is emitted at hold // 2
        emit = hold // 2
        decay = math.exp(-dt / self.tau_syn)
        # each spike adds a kick that then decays exactly; the kick is set so that one spike's charge
        # Σ_k kick decay^k dt is 1/N (1/(N tau_syn) would give (dt/tau_syn)/(1 − decay)/N = 1.05/N,
        # an effective J 5 % too large; found by the Brian2 cross-check)
        kick = (1.0 - decay) / (n * dt)
        vp = jnp.float32(self.v_peak)
        on, off = round(self.t_on / self.record_step), round(self.t_off / self.record_step)

        def step(carry, _):
            v, left, s, ring, k, drive = carry
            active = left <= 0
            moved = v + dt * (v * v + eta + drive + coupling * s)
            fired = active & (moved >= vp)
            v = jnp.where(fired, -vp, jnp.where(active, moved, v))
            left = jnp.where(fired, hold, left - 1)
            count = jnp.sum(left == emit).astype(jnp.float32)
            slot = k % lag
            s = s * decay + ring[slot] * kick  # the spikes emitted ``lag`` steps ago arrive now
            ring = ring.at[slot].set(count)
            return (v, left, s, ring, k + 1, drive), count

        def record(carry, index):
            drive = jnp.where((index >= on) & (index < off), self.amplitude, 0.0).astype(jnp.float32)
            carry = (*carry, drive)
            carry, counts = jax.lax.scan(step, carry, None, length=steps_per_record)
            v, left = carry[0], carry[1]
            active = left <= 0
            mean_v = jnp.sum(jnp.where(active, v, 0.0)) / jnp.maximum(jnp.sum(active), 1)
            return carry[:-1], (mean_v, jnp.sum(counts))

        carry = (
            jnp.full((n,), self.v0, jnp.float32), jnp.zeros((n,), jnp.int32), jnp.float32(0.0),
            jnp.zeros((lag,), jnp.float32), jnp.int32(0),
        )
        # the first sample is the initial state, as in the mean field's traces
        _, (mean_v, spikes) = jax.lax.scan(record, carry, jnp.arange(self.num_records - 1))
        mean_v = jnp.concatenate([jnp.full((1,), self.v0, jnp.float32), mean_v])
        rate = jnp.concatenate([jnp.zeros((1,), jnp.float32), spikes]) / (n * self.record_step)
        return jnp.stack([mean_v, smooth_flat(rate, round(self.rate_window / self.record_step))])


def smooth_flat(x, width: int):
    """Centred moving average over ``width`` samples with zero padding (numpy ``convolve(mode="same")``)."""
    if width <= 1:
        return x
    return jnp.convolve(x, jnp.full((width,), 1.0 / width, x.dtype), mode="same")
