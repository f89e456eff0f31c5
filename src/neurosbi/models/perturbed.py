"""The MPR mean field changed in one controlled way: the data-generating processes of robustness sweeps.

Inference is made with ``Montbrio``; observations come from ``PerturbedMontbrio(perturbation, strength)``,
which at ``strength = 0`` is the MPR model itself (the same equations, protocol, prior and features;
Gaussian Euler–Maruyama as the published scheme) and moves away from it as ``strength`` grows. The
perturbations are the two kinds seed 000 names:

A change of functional form
    ``"adaptation"``: spike-frequency adaptation (Gast et al. 2020), a slow variable that the rate
    drives and that lowers the excitability, ``dv/dt = … − a``, ``τ_a da/dt = −a + strength · r`` with
    ``τ_a = ADAPTATION_TAU``.
    ``"synapse"``: synaptic kinetics (Devalle et al. 2017): the recurrent input ``J r`` becomes ``J s``
    with ``strength · ds/dt = −s + r`` (``strength`` is the synaptic time constant; 0 = instantaneous).
    ``"heterogeneity"``: the distribution of the neurons' excitabilities, which MPR takes to be a
    Lorentzian, becomes the mixture ``(1 − strength) · Lorentzian(η, Δ) + strength · Gaussian(η, σ_G)``
    with the same centre and half-width at half maximum (``σ_G = Δ / √(2 ln 2)``): the same bulk,
    light tails. The mean field stays exact in the thermodynamic limit (Montbrió et al. 2015) when the
    Gaussian is written as ``GAUSS_NODES`` Lorentzian sub-populations (centres ``η + σ_G z_k`` on an even
    grid of ``z`` over ``±GAUSS_RANGE``, weights ``∝ e^{−z²/2}``, each of half-width ``σ_G`` times the grid
    spacing, so their sum is smooth): every sub-population follows its own (r_k, v_k) equations, all
    are driven by the total rate, and the recorded r and v are the weighted sums. What this represents
    is the Gaussian convolved with a Lorentzian of half-width ``Δ / 3.5``: its tails carry
    ``strength / 3.5`` of MPR's tail weight instead of none. Every sub-population receives the same
    noise increments, so the recorded noise is MPR's; a narrow sub-population driven by that shared noise
    can synchronise (weak damping) and its Euler step diverge: in the default sweep 5–8 of 100 noisy
    simulations per strength end in NaN, which ``simulate`` and the sweep count as invalid (the deterministic
    model is unaffected).

A change of noise model
    ``"colored"``: the state noise is an Ornstein–Uhlenbeck process with correlation time ``strength``
    (stationary variance ``1 / (2 strength)``, so that its integral has the white noise's intensity
    σ² per unit time; 0 = white).
    ``"multiplicative"``: the noise on each variable is scaled by ``(1 − strength) + strength |X|``
    (0 = additive, 1 = proportional to the state).
    ``"observation"``: Gaussian measurement noise of standard deviation ``strength`` on every recorded
    sample of v and r.
    ``"contamination"``: each recorded sample is, with probability ``strength``, hit by an artefact
    drawn from ``N(0, CONTAMINATION_SCALE²)`` (electrode glitches).

The integrator is a plain ``lax.scan`` with one Gaussian draw per step and variable, not ``Montbrio``'s
fused two-point scheme: sweeps simulate hundreds of observations, not banks of 10⁵, and the extra
state variables would cost the fast path its fusion.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import simulation_keys
from .montbrio import Montbrio

ADAPTATION_TAU = 1.0  # s
CONTAMINATION_SCALE = 2.0  # sd of an artefact, in the units of v and r
PERTURBATIONS = ("adaptation", "synapse", "colored", "multiplicative", "observation", "contamination",
                 "heterogeneity")
GAUSS_NODES = 25  # Lorentzian sub-populations that write the Gaussian of "heterogeneity"
GAUSS_RANGE = 4.0  # their centres span η ± GAUSS_RANGE σ_G
_RECORD = 25  # steps per recorded sample on the feature path (Montbrio's feature_stride)
_START_KEY = 10**8  # fold_in data of the initial OU noise and the observation noise, past any group index


class PerturbedMontbrio(Montbrio):
    """``Montbrio`` (all its options) with one ``perturbation`` of the given ``strength`` (module docstring).

    Parameters, prior, protocol, trace layout and features are the MPR model's, so a posterior trained on
    ``Montbrio`` with the same options reads these simulations directly.

    Example:
        >>> model = PerturbedMontbrio(perturbation="synapse", strength=0.05)
        >>> x = model.simulate_features(jax.random.key(0), jnp.asarray([[0.7, -4.6, 14.5]]))
    """

    name: ClassVar[str] = "montbrio-perturbed"
    perturbation: str = eqx.field(static=True, default="adaptation")
    strength: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if self.perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {self.perturbation!r}")
        if not self.strength >= 0:
            raise ValueError(f"strength must be >= 0, got {self.strength}")
        if self.perturbation in ("multiplicative", "contamination", "heterogeneity") and self.strength > 1:
            raise ValueError(f"a {self.perturbation} strength is a fraction in [0, 1], got {self.strength}")
        if self.feature_stride != _RECORD:
            raise ValueError(f"PerturbedMontbrio reads features every {_RECORD} steps; feature_stride is "
                             f"{self.feature_stride}")

    def mean_field(self) -> Montbrio:
        """The unperturbed model with the same options: the one inference uses."""
        options = {k: v for k, v in self.config().items() if k not in ("perturbation", "strength")}
        return Montbrio(**options)

    # -- simulation ---------------------------------------------------------------------------
    def simulate(self, key, theta):
        """Traces ``[batch, 2, time]`` (v, r), every step."""
        return self._integrate(key, theta, every=1)[..., : self.num_steps]

    def simulate_features(self, key, theta):
        sampled = self._integrate(key, theta, every=_RECORD)
        return self.summary.batched(sampled[:, list(self.observed_channels), :])

    def _integrate(self, key, theta, every: int):
        """The state before steps 0, every, 2·every, … ``[batch, 2, records]``, with the observation
        perturbations applied to the recorded samples."""
        base = self
        theta = jnp.asarray(theta, jnp.float32)
        batch = theta.shape[0]
        keys = simulation_keys(key, batch)
        delta, eta, coupling = theta[:, 0], theta[:, 1], theta[:, 2]
        col = 3
        if base.infer_sigma:
            sigma, col = theta[:, col], col + 1
        else:
            sigma = jnp.full((batch,), base.noise_sigma, jnp.float32)
        extra = theta[:, col] if base.infer_input else None
        dt = base.time_step
        kind, s = self.perturbation, self.strength
        colored = kind == "colored" and s > 0
        decay = float(jnp.exp(-dt / s)) if colored else 0.0
        records = -(-base.num_steps // every)

        het = kind == "heterogeneity" and s > 0
        nodes = GAUSS_NODES if het else 0
        z = np.linspace(-GAUSS_RANGE, GAUSS_RANGE, GAUSS_NODES)
        weights = jnp.asarray(np.exp(-0.5 * z**2) / np.exp(-0.5 * z**2).sum(), jnp.float32)[:nodes]
        sd_gauss = delta / np.sqrt(2 * np.log(2))  # the Gaussian with the Lorentzian's half-width
        eta_sub = eta[:, None] + sd_gauss[:, None] * jnp.asarray(z, jnp.float32)[:nodes]  # [batch, nodes]
        delta_sub = (sd_gauss * (z[1] - z[0]))[:, None]

        def total(v, r, vs, rs):
            """The recorded (v, r): MPR's, or the mixture's weighted sums."""
            if not het:
                return v, r
            return (1 - s) * v + s * (vs @ weights), (1 - s) * r + s * (rs @ weights)

        def step(state, xs):
            v, r, a, syn, xi_v, xi_r, vs, rs = state
            k, noise = xs  # noise [2, batch]
            r_all = total(v, r, vs, rs)[1]
            drive = coupling * (syn if kind == "synapse" and s > 0 else r_all)
            inp = base._input(k, extra)
            dv = v * v - jnp.pi**2 * r * r + drive + eta + inp - a  # the order of MPR's sum, kept bit for bit
            dr = delta / jnp.pi + 2.0 * r * v
            dvs = vs * vs - jnp.pi**2 * rs * rs + (drive + inp - a)[:, None] + eta_sub
            drs = delta_sub / jnp.pi + 2.0 * rs * vs
            if kind == "adaptation" and s > 0:
                a = a + dt * (s * r - a) / ADAPTATION_TAU
            if kind == "synapse" and s > 0:
                syn = syn + dt * (r - syn) / s
            if colored:  # exact OU update; stationary variance 1 / (2 s)
                xi_v = decay * xi_v + jnp.sqrt((1 - decay**2) / (2 * s)) * noise[0]
                xi_r = decay * xi_r + jnp.sqrt((1 - decay**2) / (2 * s)) * noise[1]
                kick_v, kick_r = sigma * dt * xi_v, sigma * dt * xi_r
            else:
                kick_v, kick_r = sigma * jnp.sqrt(dt) * noise[0], sigma * jnp.sqrt(dt) * noise[1]
            if kind == "multiplicative":
                kick_v = kick_v * ((1 - s) + s * jnp.abs(v))
                kick_r = kick_r * ((1 - s) + s * jnp.abs(r))
            return (v + dt * dv + kick_v, r + dt * dr + kick_r, a, syn, xi_v, xi_r,
                    vs + dt * dvs + kick_v[:, None], rs + dt * drs + kick_r[:, None]), None

        def group(state, g):
            noise = jax.vmap(lambda kk: jax.random.normal(jax.random.fold_in(kk, g), (every, 2)))(keys)
            steps = g * every + jnp.arange(every)
            out = jnp.stack(total(*state[:2], *state[6:]))  # the sample before the group's first step
            state, _ = jax.lax.scan(step, state, (steps, jnp.moveaxis(noise, 0, -1)))
            return state, out

        zeros = jnp.zeros((batch,), jnp.float32)
        xi0 = [zeros, zeros]
        if colored:  # start the OU noise in its stationary law
            start = jax.vmap(lambda kk: jax.random.normal(jax.random.fold_in(kk, _START_KEY), (2,)))(keys)
            xi0 = [start[:, 0] / jnp.sqrt(2 * s), start[:, 1] / jnp.sqrt(2 * s)]
        sub0 = jnp.zeros((batch, nodes), jnp.float32)  # the sub-populations of "heterogeneity" ([batch, 0] otherwise)
        state0 = (jnp.full((batch,), base.v0), jnp.full((batch,), base.r0), zeros, jnp.full((batch,), base.r0), *xi0,
                  sub0 + base.v0, sub0 + base.r0)
        _, out = jax.lax.scan(group, state0, jnp.arange(records))  # [records, 2, batch]
        traces = jnp.transpose(out, (2, 1, 0))
        if kind in ("observation", "contamination") and s > 0:
            k_obs = jax.vmap(lambda kk: jax.random.fold_in(kk, _START_KEY + 1))(keys)
            noise = jax.vmap(lambda kk: jax.random.normal(kk, traces.shape[1:]))(k_obs)
            if kind == "observation":
                traces = traces + s * noise
            else:
                hit = jax.vmap(lambda kk: jax.random.uniform(jax.random.fold_in(kk, 1), traces.shape[1:]))(k_obs) < s
                traces = traces + jnp.where(hit, CONTAMINATION_SCALE * noise, 0.0)
        return traces
