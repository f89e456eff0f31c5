"""The five-neuron stomatogastric subcircuit whose hub neuron EPI studies (Bittner et al. 2021, after
Gutierrez, O'Leary & Marder 2013; reference §1.9).

Two half-centre oscillators, fast (f1 ⇄ f2) and slow (s1 ⇄ s2), each a pair of Morris–Lecar-like
neurons with reciprocal inhibition g_synB = 5 nS, drive a hub neuron: electrically through f2 and s2
(conductance g_el) and synaptically from f1 and s1 (inhibition g_synA). Each neuron ``i`` has

    C dV/dt = −(I_leak + I_Ca + I_K + I_h + I_elec + I_syn) + σ_I ξ,     C = 1 nF,
    I_leak = g_leak (V − V_leak),  I_Ca = g_Ca M∞(V) (V − V_Ca),  I_K = g_K N (V − V_K),
    I_h = g_h H (V − V_h),  dN/dt = λ_N(V) (N∞(V) − N),  dH/dt = (H∞(V) − H) / τ_h(V),
    I_elec = Σ_j g_el (V_i − V_j)            (over the gap-junction partners j of i),
    I_syn = Σ_j g_ij S∞(V_j) (V_i − V_syn)   (over the presynaptic neurons j of i),

with the gating functions and constants of the reference (M∞, N∞ tanh curves; λ_N = φ_N cosh;
H∞ a Boltzmann curve; τ_h = 272 + 1499 / (1 + e^{(v7 − V)/v8}) ms; S∞ a Boltzmann curve at −25 mV).
The state is 15-D: V (5), N (5), H (5), in the neuron order f1, f2, hub, s1, s2.

Units: mV, ms, nF, µS and nA (so µS · mV = nA and nA · ms / nF = mV); the parameters
z = (g_el, g_synA) are in nS, as in the paper, and converted (× 10⁻³ µS). Traces are in mV.

Integration: forward Euler at dt = 25 ms for T = 300 steps from the published x0, as the paper and
its code (``neural_circuits/STG_Circuit.py``) do: no internal sub-steps. This step is stable on the
whole box: along trajectories over a 5 × 5 grid of the box the most negative eigenvalue of dt · ∂f/∂x is
≈ −1.04 (explicit Euler needs > −2; the membrane's total conductance over C sets it, ≈ 0.04 µS / 1 nF;
N and H relax at dt · rate < 0.1). It is coarse, though: the frequencies are those of the Euler map,
not of the ODE (at dt / 25 the hub frequency moves by up to ≈ 0.05 Hz inside the two regimes, and the
border between them shifts). ``substeps`` > 1 integrates at dt / substeps while still recording every
25 ms, for checking; the emergent property is defined on the published map, ``substeps = 1``.

Noise: as in the code, a current σ_I ξ (ξ ~ N(0, 1) per neuron) held over each Euler step,
dV = dt / C · (−I + σ_I ξ). The paper gives its variance as (10⁻¹² A)², so ``noise_std`` = 10⁻³ nA
by default (about 0.025 mV per step: the trajectories are nearly deterministic). With sub-steps the
per-sub-step std is σ_I √substeps, so the voltage noise over a 25 ms sample is unchanged.

Frequency statistic (paper): of each V trace (in volts) drop the first 20 samples, rectify, average
over a moving window of 20 samples (valid part: 262 samples for T = 300), subtract the mean, and take
|X(f)| = |Σ_n v_n e^{−2πi f n dt}| at f = 0.00, 0.01, …, 1.00 Hz; ψ = softmax(β_ψ |X|) and
ω = Σ_k ψ_k f_k. The DFT is the plain sum, of voltages in volts (the code's convention): over the box the
peak |X| of a limit cycle is 0.3–1.1 V·sample, so β_ψ |X| spans tens between the peak and the lobe's
edge (the lobe is ±0.15 Hz wide: 262 samples are 6.55 s) and ψ is a soft argmax over a few 0.01 Hz
bins (sd of ψ ≈ 0.01–0.03 Hz at β_ψ = 100, ≈ 0.005 Hz at the code's 500). The same β on |X| in mV
would be a hard argmax (no useful gradient), and on |X| / N (the mean, not the sum) ψ would be nearly
flat and ω ≈ 0.5 Hz whatever the trace. A silent trace has |X| = 0 everywhere and ω = 0.5 Hz, the
mean of the grid. On a sinusoid ω is within ≈ 0.012 Hz of its frequency (the 6.55 s record holds only
two cycles at 0.3 Hz, so the phase moves the lobe a little).

Behaviour (this implementation, the default noise): the hub follows the fast rhythm of f1 (≈ 0.6–0.7
Hz) when g_synA is weak (≤ 0.5 nS) and the slow rhythm of s1 (≈ 0.33–0.44 Hz) when it is strong
(≥ 3.5 nS, or ≥ 2.5 nS once g_el ≥ 7 nS); at g_synA = 2.5 nS raising g_el from 5 to 8 nS switches it from fast to
slow. Intermediate hub frequencies near 0.55 Hz lie at g_el ≳ 5.5 nS, g_synA ≈ 1–1.5 nS, where the
whole circuit locks to one rhythm. (Reference §1.9's "fast .35 Hz / slow .68 Hz" has the labels
swapped: the fast neurons run at ≈ 0.68 Hz.) Near the border between the regimes the 1 pA noise
alone moves ω_hub by up to ≈ 0.2 Hz between trials.

Example:
    >>> model = STGHub()
    >>> traces = model.simulate(jax.random.key(0), jnp.array([[4.5, 3.0]]))   # [1, 5, 301], mV
    >>> model.features(traces)                                                 # ω of f1, hub, s1 (Hz)
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ShapeError
from ._base import BoxModel, EmergentProperty, simulation_keys

NEURONS = ("f1", "f2", "hub", "s1", "s2")
F1, F2, HUB, S1, S2 = range(5)

# -- constants of reference §1.9, in mV, ms, nF, µS, nA ---------------------------------------
C_M = 1.0  # nF
V_LEAK, V_CA, V_K, V_H, V_SYN = -40.0, 100.0, -80.0, -20.0, -75.0  # mV
G_LEAK = 1e-4  # µS
#                 f1       f2       hub      s1       s2
G_CA = np.array([1.9e-2, 1.9e-2, 1.7e-2, 8.5e-3, 8.5e-3])  # µS
G_K = np.array([3.9e-2, 3.9e-2, 1.9e-2, 1.5e-2, 1.5e-2])  # µS
G_H = np.array([2.5e-2, 2.5e-2, 8.0e-3, 1.0e-2, 1.0e-2])  # µS
G_SYN_B = 5e-3  # µS (5 nS), the half-centres' reciprocal inhibition
PHI_N = 0.002  # 1/ms (2 /s)
V1, V2, V3, V4, V5, V6, V7, V8, V9 = 0.0, 20.0, 0.0, 15.0, 78.3, 10.5, -42.2, 87.3, 5.0  # mV
V_TH = -25.0  # mV
NS = 1e-3  # µS per nS

# x0 of the published code: V (volts there, mV here), N, H
X0 = np.concatenate([
    1e3 * np.array([-0.04169771, -0.04319491, 0.00883992, -0.06879824, 0.03048103]),
    np.array([0.00151316, 0.19784773, 0.56514935, 0.12214069, 0.35290397]),
    np.array([0.08614699, 0.04938177, 0.05568701, 0.07007949, 0.05790969]),
])

# -- the hub-frequency statistic ------------------------------------------------------------
DT = 25.0  # ms between samples (and Euler steps)
STEPS = 300
DROP = 20  # samples dropped before the spectrum
WINDOW = 20  # moving-average length, samples
FREQUENCIES = np.round(np.arange(101) * 0.01, 2)  # Hz
BETA_PSI = 100.0  # paper (the code: 500)


def vector_field(x, g_el, g_syn_a, current_noise):
    """dx/dt (mV/ms and 1/ms) of one circuit: ``x`` [15] = (V, N, H); ``g_el``, ``g_syn_a`` in µS;
    ``current_noise`` [5] in nA, added to the membrane current."""
    v, n, h = x[:5], x[5:10], x[10:]
    m_inf = 0.5 * (1.0 + jnp.tanh((v - V1) / V2))
    n_inf = 0.5 * (1.0 + jnp.tanh((v - V3) / V4))
    h_inf = jax.nn.sigmoid(-(v + V5) / V6)  # 1 / (1 + e^{(V + v5)/v6})
    s_inf = jax.nn.sigmoid((v - V_TH) / V9)  # 1 / (1 + e^{(v_th − V)/v9})
    lambda_n = PHI_N * jnp.cosh((v - V3) / (2.0 * V4))
    tau_h = 272.0 + 1499.0 * jax.nn.sigmoid((v - V7) / V8)  # 272 − (−1499 / (1 + e^{(v7 − V)/v8})) ms
    zero = jnp.zeros_like(v[0])
    # gap junctions f2–hub and hub–s2, pulling the coupled voltages together
    i_elec = g_el * jnp.stack([zero, v[F2] - v[HUB], (v[HUB] - v[F2]) + (v[HUB] - v[S2]), zero, v[S2] - v[HUB]])
    # inhibition: f1 ⇄ f2 and s1 ⇄ s2 (g_synB); f1 → hub and s1 → hub (g_synA)
    g_syn = jnp.stack([G_SYN_B * s_inf[F2], G_SYN_B * s_inf[F1], g_syn_a * (s_inf[F1] + s_inf[S1]),
                       G_SYN_B * s_inf[S2], G_SYN_B * s_inf[S1]])
    dtype = x.dtype
    current = (
        G_LEAK * (v - V_LEAK)
        + jnp.asarray(G_CA, dtype) * m_inf * (v - V_CA)
        + jnp.asarray(G_K, dtype) * n * (v - V_K)
        + jnp.asarray(G_H, dtype) * h * (v - V_H)
        + i_elec
        + g_syn * (v - V_SYN)
    )
    dv = (current_noise - current) / C_M
    return jnp.concatenate([dv, lambda_n * (n_inf - n), (h_inf - h) / tau_h])


def euler_step(x, g_el_ns, g_syn_a_ns, current_noise, dt=DT):
    """One forward-Euler step of ``dt`` ms; conductances in nS (the parameters' unit)."""
    return x + dt * vector_field(x, NS * g_el_ns, NS * g_syn_a_ns, current_noise)


def _safe_abs(re, im):
    """|re + i im| with a zero (not NaN) gradient where both are 0 (a silent trace)."""
    power = re * re + im * im
    positive = power > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, power, 1.0)), 0.0)


def soft_argmax_frequency(v_mv, sample_ms=DT, beta=BETA_PSI):
    """The paper's soft-argmax frequency (Hz) of traces ``v_mv [..., time]`` in mV sampled every
    ``sample_ms``: drop ``DROP`` samples, rectify, ``WINDOW``-sample moving average, remove the mean,
    |DFT| (volts, plain sum) at 0.00..1.00 Hz, ψ = softmax(β |X|), ω = Σ ψ f."""
    v = jax.nn.relu(v_mv[..., DROP:] * 1e-3)  # volts, as the paper's code
    cumsum = jnp.cumsum(jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(1, 0)]), axis=-1)
    smooth = (cumsum[..., WINDOW:] - cumsum[..., :-WINDOW]) / WINDOW  # valid moving average
    smooth = smooth - jnp.mean(smooth, axis=-1, keepdims=True)
    n = smooth.shape[-1]
    phase = 2 * np.pi * np.outer(np.arange(n) * sample_ms * 1e-3, FREQUENCIES)  # [n, 101], rad
    dtype = smooth.dtype
    re = smooth @ jnp.asarray(np.cos(phase), dtype)
    im = smooth @ jnp.asarray(-np.sin(phase), dtype)
    psi = jax.nn.softmax(beta * _safe_abs(re, im), axis=-1)
    return psi @ jnp.asarray(FREQUENCIES, dtype)


class STGHub(BoxModel):
    """The STG hub circuit of EPI; parameters the gap-junction and hub-synapse conductances (nS).

    Attributes:
        noise_std: std of the current noise per neuron and Euler step, nA (paper: 10⁻³ nA = 1 pA).
        beta_psi: inverse temperature of the soft-argmax (paper 100; the published code 500).
        num_steps: Euler steps of 25 ms (paper 300; development scripts 200); traces have one more
            sample, x0.
        substeps: Euler sub-steps per 25 ms sample (1: the published scheme).

    Reference: Bittner et al. (2021) eLife 10:e56265, Fig. 1; the circuit of Gutierrez, O'Leary &
    Marder (2013) Neuron 77:845.
    """

    noise_std: float = eqx.field(static=True, default=1e-3)
    beta_psi: float = eqx.field(static=True, default=BETA_PSI)
    num_steps: int = eqx.field(static=True, default=STEPS)
    substeps: int = eqx.field(static=True, default=1)

    name: ClassVar[str] = "stg-hub"
    # each simulation's noise comes from its own key; XLA on CPU may still round a batch of 1 and one
    # of 2 differently in the last bit (≈ 1e-3 mV after 300 steps, away from the regime border)
    per_simulation_keys: ClassVar[bool] = True
    _names: ClassVar[tuple[str, ...]] = ("g_el", "g_synA")
    _units: ClassVar[tuple[str, ...]] = ("nS", "nS")
    _low: ClassVar[tuple[float, ...]] = (4.0, 0.01)
    _high: ClassVar[tuple[float, ...]] = (8.0, 4.0)
    _truth: ClassVar[tuple[float, ...]] = (4.5, 3.0)  # the paper's example simulation (Fig. 1B)
    # the paper's EPI run: real NVP, 3 couplings, 2 x 25 units, n = 400, c0 = 1e5, beta = 2, 5,000 per epoch,
    # convergence tested on batches of N_test = 100 = n / 4.
    # The paper started from a Gaussian fitted to ABC samples (``init="abc"``); here (tested with full-batch
    # convergence tests, before N_test = n / 4) that start collapsed to a
    # lower entropy than the box's centre (benchmarks/README, STG), so the default stays "box"
    epi_defaults: ClassVar[dict] = {"iterations_per_epoch": 5000, "batch_size": 400, "c0": 1e5, "beta": 2.0,
                                    "hidden_units": 25, "test_fraction": 0.25}

    def __check_init__(self):
        if not (np.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be a finite current >= 0 in nA (paper: 1e-3), got {self.noise_std!r}")
        if not (np.isfinite(self.beta_psi) and self.beta_psi > 0):
            raise ValueError(f"beta_psi must be a finite number > 0 (paper: 100), got {self.beta_psi!r}")
        min_steps = DROP + WINDOW + 1
        if not (isinstance(self.num_steps, int) and self.num_steps >= min_steps):
            raise ValueError(f"num_steps must be an integer >= {min_steps} (the statistic drops {DROP} samples and "
                             f"averages over {WINDOW}; paper: 300), got {self.num_steps!r}")
        if not (isinstance(self.substeps, int) and self.substeps >= 1):
            raise ValueError(f"substeps must be a positive integer (1: the paper's Euler step of 25 ms), "
                             f"got {self.substeps!r}")

    @property
    def channel_names(self):
        return tuple(f"V_{n}" for n in NEURONS)

    @property
    def feature_names(self):
        return ("omega_f1", "omega_hub", "omega_s1")

    @property
    def dt(self):
        return DT

    @property
    def trace_shape(self):
        return (5, self.num_steps + 1)

    def _check_theta_shape(self, theta):
        if theta.ndim != 2 or theta.shape[1] != 2:
            raise ShapeError(f"theta must be [batch, 2] = (g_el, g_synA) in nS, got shape {theta.shape}; "
                             "reshape a single parameter to [1, 2]")

    def simulate_states(self, key, theta):
        """The full state ``[batch, 15, num_steps + 1]`` (V in mV, N, H), x0 first; ``key``: one key or
        ``[batch]`` keys (one per simulation)."""
        theta = jnp.asarray(theta)
        if not jnp.issubdtype(theta.dtype, jnp.floating):
            theta = theta.astype(jnp.float32)
        self._check_theta_shape(theta)
        dtype = theta.dtype
        batch, k = theta.shape[0], self.substeps
        keys = simulation_keys(key, batch)
        sigma = jnp.asarray(self.noise_std * np.sqrt(k), dtype)
        dt = DT / k
        x0 = jnp.asarray(X0, dtype)

        def one(sim_key, z):
            noise = sigma * jax.random.normal(sim_key, (self.num_steps, k, 5), dtype)

            def sample(x, noise_block):
                for i in range(k):
                    x = euler_step(x, z[0], z[1], noise_block[i], dt)
                return x, x

            _, xs = jax.lax.scan(sample, x0, noise)
            return jnp.concatenate([x0[None], xs]).T

        return jax.vmap(one)(keys, theta)

    def simulate(self, key, theta):
        """Membrane potentials ``[batch, 5, num_steps + 1]`` in mV (f1, f2, hub, s1, s2), every 25 ms."""
        return self.simulate_states(key, theta)[:, :5]

    def frequencies(self, traces):
        """Soft-argmax frequency (Hz) of every channel: ``[batch, 5]`` for traces ``[batch, 5, time]``."""
        if traces.ndim != 3 or traces.shape[-1] < DROP + WINDOW + 1:
            raise ShapeError(f"traces must be [batch, channels, time] with time > {DROP + WINDOW} samples, "
                             f"got shape {traces.shape}")
        return soft_argmax_frequency(traces, DT, self.beta_psi)

    def features(self, traces):
        """ω of f1, hub and s1 (Hz): ``[batch, 3]``."""
        return self.frequencies(traces[:, (F1, HUB, S1)])

    def hub_frequency(self, key, theta):
        """ω_hub (Hz), ``[batch, 1]``: the statistic of the emergent property."""
        return self.frequencies(self.simulate(key, theta)[:, HUB:HUB + 1])

    def emergent_property(self, name: str = "hub-0.55Hz") -> EmergentProperty:
        """``"hub-0.55Hz"``: the hub at an intermediate frequency, E[ω_hub] = 0.55 Hz, sd 0.025 Hz."""
        if name != "hub-0.55Hz":
            raise ValueError(f"{self.name} has the emergent property 'hub-0.55Hz', not {name!r}")
        return EmergentProperty(name, self.hub_frequency, mean=(0.55,), variance=(0.025**2,), names=("omega_hub",),
                                simulations_per_z=1)
