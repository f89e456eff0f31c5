"""The stochastic stabilized supralinear network of V1 with E, P, S and V populations, as EPI studies it
(Bittner et al. 2021, after Palmigiano et al.; reference §1.7).

τ dx/dt = −x + φ(W x + h + ε), φ(u) = [u]₊², τ = 1 ms for every population; ε is an Ornstein–Uhlenbeck
input noise, τ_ε dε = −ε dt + √(2 τ_ε) σ̃ dB, τ_ε = 5 ms, σ̃_a = σ_a √(1 + τ/τ_ε), so that σ_a is the std
of the input a population would see without recurrence. W and h = h_b + c h_c are the published fit
rescaled to rates in Hz (W = W_fit/10, h = 10 h_fit; then x = 100 x_fit exactly, since φ is quadratic);
x(0) ~ U[10, 25] Hz, ε(0) = 0. Forward Euler at dt = 0.5 ms for 200 steps (100 ms). The statistic s_E is
the temporal std of x_E over (75, 100] ms; the emergent property averages it over 100 trials per
parameter and asks E[s_E] = 5 Hz (or 10 Hz) with variance 1 Hz². Parameters z = (σ_E, σ_P, σ_S, σ_V)
∈ [0, 0.5]⁴.

Conventions the paper leaves open, and the choices here (``benchmarks/v1_epi.py`` prints the numbers):

- **Units of σ.** The published code keeps the fitted units (W_fit, h_fit, rates ×100 afterwards). There
  σ ∈ [0, 0.5] is five to fifty times the noise that gives s_E = 5 Hz, and most of the box runs away. In
  the rescaled model's units (input 10 × fitted), σ_E = σ_P = σ_S = σ_V = 0.1 gives s_E ≈ 6 Hz and
  σ = 0.2 about 12 Hz, so both published properties sit inside the box, as in the paper's figures. σ is
  in the rescaled units.
- **Contrast.** Not stated for the EPI run (a development script uses 0.5). At c = 0.5 s_E = 5 Hz needs
  σ ≈ 0.02 and σ = 0.1 already runs away in half the trials; at c = 0 (spontaneous activity, the
  default) the properties are reached well inside the box. ``contrast`` is a field.
- **Runaway.** A supralinear network driven hard enough escapes to infinity in finite time. Rates are
  clamped to [0, ``max_rate``] = [0, 1,000] Hz after each step (the published code also clamps), so a
  runaway trial gives a large but finite s_E that EPI's constraints push away from, never a NaN.
- **Noise.** ``noise="two-point"`` (default) replaces each Gaussian increment by ±√dt with probability ½,
  the simplified weak Euler scheme (Kloeden & Platen 1992, §14.1; as ``montbrio``): same weak order, one
  random bit per increment instead of a Gaussian draw, which is what bounds this simulator's speed
  (shared/reference/performance.md: 620 M increments/s vs 80 M). EPI needs 100 × 100 trials × 800
  increments per iteration. ``noise="gaussian"`` is the published scheme; ``tests/test_v1_ssn.py`` checks
  that both give the same s_E.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import BoxModel, EmergentProperty

POPULATIONS = ("E", "P", "S", "V")
W_RATES = ((0.218, -0.119, -0.0594, -0.0229),
           (0.166, -0.0651, -0.068, -0.0242),
           (0.0895, -5.22e-4, -1.51e-5, -0.0761),
           (0.334, -0.231, -0.0254, -2.52e-5))  # rows / columns E, P, S, V; W_fit / 10
H_BASE = (4.16, 4.29, 4.91, 4.86)  # 10 h_b,fit
H_CONTRAST = (3.59, 4.03, 0.0, 0.0)  # 10 h_c,fit
TAU, TAU_NOISE = 1.0, 5.0  # ms
DT, STEPS = 0.5, 200  # ms, steps (100 ms)
WINDOW_START = 150  # s_E over steps 151..200: t in (75, 100] ms
_WORDS = STEPS * 4 // 32  # uint32 words of two-point signs per trial


class V1Circuit(BoxModel):
    """Four-population stochastic SSN; parameters the input-noise stds σ_E, σ_P, σ_S, σ_V (rescaled units).

    Example:
        >>> model = V1Circuit()
        >>> prop = model.emergent_property("E-variability-5Hz")  # E[s_E] = 5 Hz, Var = 1 Hz²
    """

    contrast: float = eqx.field(static=True, default=0.0)
    trials: int = eqx.field(static=True, default=100)
    noise: Literal["two-point", "gaussian"] = eqx.field(static=True, default="two-point")
    max_rate: float = eqx.field(static=True, default=1000.0)

    name: ClassVar[str] = "v1-ssn"
    _names: ClassVar[tuple[str, ...]] = ("sigma_E", "sigma_P", "sigma_S", "sigma_V")
    _units: ClassVar[tuple[str, ...]] = ("",) * 4
    _low: ClassVar[tuple[float, ...]] = (0.0,) * 4
    _high: ClassVar[tuple[float, ...]] = (0.5,) * 4
    _truth: ClassVar[tuple[float, ...]] = (0.1, 0.1, 0.1, 0.1)
    # the paper's EPI run: 3 couplings, 2 x 50 units, c0 = 0.1, beta = 2, n = 100, 2,000 iterations per epoch
    epi_defaults: ClassVar[dict] = {"iterations_per_epoch": 2000, "batch_size": 100, "c0": 0.1, "beta": 2.0,
                                    "hidden_units": 50, "test_batches": 100}

    def __check_init__(self):
        if not (isinstance(self.trials, int) and self.trials >= 1):
            raise ValueError(f"trials must be an integer >= 1, got {self.trials!r}")
        if self.noise not in ("two-point", "gaussian"):
            raise ValueError(f"noise must be 'two-point' or 'gaussian', got {self.noise!r}")
        if not (np.isfinite(self.contrast) and self.contrast >= 0):
            raise ValueError(f"contrast must be finite and >= 0, got {self.contrast}")
        if not self.max_rate > 0:
            raise ValueError(f"max_rate must be > 0 Hz, got {self.max_rate}")

    @property
    def channel_names(self):
        return tuple(f"x_{p}" for p in POPULATIONS)

    @property
    def feature_names(self):
        return ("s_E",)

    @property
    def dt(self):
        return DT

    @property
    def trace_shape(self):
        return (4, STEPS)

    def input(self, dtype=jnp.float32):
        """h = h_b + c h_c (rescaled units)."""
        return jnp.asarray(H_BASE, dtype) + self.contrast * jnp.asarray(H_CONTRAST, dtype)

    def _increments(self, key, rows, dtype):
        """Brownian increments ``[STEPS, rows, 4]``: ±√dt (two-point) or N(0, dt)."""
        if self.noise == "gaussian":
            return jax.random.normal(key, (STEPS, rows, 4), dtype) * np.sqrt(DT)
        words = jax.random.bits(key, (rows, _WORDS), jnp.uint32)
        bits = (words[..., None] >> jnp.arange(32, dtype=jnp.uint32)) & 1  # [rows, words, 32]
        signs = bits.reshape(rows, STEPS, 4).astype(dtype) * 2 - 1
        return jnp.swapaxes(signs, 0, 1) * np.sqrt(DT)

    def simulate(self, key, theta):
        """One trial per parameter row: rates ``[batch, 4, 200]`` (Hz), every 0.5 ms."""
        rows = theta.shape[0]
        k0, kn = jax.random.split(key)
        w = jnp.asarray(W_RATES, theta.dtype)
        h = self.input(theta.dtype)
        gain = np.sqrt(2 * TAU_NOISE) / TAU_NOISE * np.sqrt(1 + TAU / TAU_NOISE)
        x0 = jax.random.uniform(k0, (rows, 4), theta.dtype, 10.0, 25.0)
        increments = self._increments(kn, rows, theta.dtype)
        noise_scale = gain * theta

        def step(carry, db):
            x, eps = carry
            drive = jnp.maximum(x @ w.T + h + eps, 0.0) ** 2
            x = jnp.clip(x + DT / TAU * (drive - x), 0.0, self.max_rate)
            eps = eps - DT / TAU_NOISE * eps + noise_scale * db
            return (x, eps), x

        _, xs = jax.lax.scan(step, (x0, jnp.zeros_like(x0)), increments)
        return jnp.transpose(xs, (1, 2, 0))

    def features(self, traces):
        """s_E: the temporal std of x_E over (75, 100] ms (a window with no variation, e.g. a trial clamped
        at ``max_rate``, gives 0 with a zero gradient rather than the NaN of √ at 0)."""
        variance = jnp.var(traces[:, 0, WINDOW_START:], axis=-1, keepdims=True)
        return jnp.sqrt(jnp.maximum(variance, 1e-12))

    def trial_average(self, key, theta):
        """s_E averaged over ``trials`` independent trials per parameter row: ``[batch, 1]``.

        All trials of all rows run as one batch of ``trials × batch`` networks (one scan)."""
        batch = theta.shape[0]
        s = self.simulate_features(key, jnp.tile(theta, (self.trials, 1)))
        return jnp.mean(s.reshape(self.trials, batch, -1), axis=0)

    def emergent_property(self, name: str = "E-variability-5Hz") -> EmergentProperty:
        """``"E-variability-5Hz"`` or ``"E-variability-10Hz"``: E[s_E] = 5 (10) Hz, Var = 1 Hz²."""
        targets = {"E-variability-5Hz": 5.0, "E-variability-10Hz": 10.0}
        if name not in targets:
            raise ValueError(f"{self.name} has the emergent properties {sorted(targets)}, not {name!r}")
        return EmergentProperty(name, self.trial_average, mean=(targets[name],), variance=(1.0,), names=("s_E",),
                                simulations_per_z=self.trials)
