"""The 2-D linear dynamical system of EPI's first example (Bittner et al. 2021; reference §1.5).

τ dx/dt = A x with A = [[a11, a12], [a21, a22]], τ = 1 s, each entry in [−10, 10]. The statistics are
the real and imaginary parts of λ₁, the eigenvalue of greatest real part (the one with positive
imaginary part for a complex pair): λ = (tr ± √(tr² − 4 det)) / 2. The emergent property
"oscillation at 1 Hz": E[Re λ₁] = 0, Var = 0.25², E[Im λ₁] = 2π, Var = (π/5)² (the paper's values;
the published scripts differ, reference part 4).

No simulation is needed for the statistics (they are closed-form in A); ``trajectories`` integrates
the system for figures.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ._base import BoxModel, EmergentProperty

TAU = 1.0  # s
X0 = (np.sqrt(2) / 2, -np.sqrt(2) / 2)


def _safe_sqrt(x):
    """√x where x > 0, else 0, with a finite gradient everywhere."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def top_eigenvalue_2x2(trace, det):
    """Real and imaginary parts of the eigenvalue of greatest real part of a real 2×2 matrix."""
    disc = trace**2 - 4 * det
    return trace / 2 + 0.5 * _safe_sqrt(disc), 0.5 * _safe_sqrt(-disc)


class LinearSystem2D(BoxModel):
    """2-D linear system τ dx/dt = A x; parameters the entries of A (row major)."""

    name: ClassVar[str] = "lds-2d"
    _names: ClassVar[tuple[str, ...]] = ("a11", "a12", "a21", "a22")
    _units: ClassVar[tuple[str, ...]] = ("1/s",) * 4
    _low: ClassVar[tuple[float, ...]] = (-10.0,) * 4
    _high: ClassVar[tuple[float, ...]] = (10.0,) * 4
    _truth: ClassVar[tuple[float, ...]] = (0.0, 2 * np.pi, -2 * np.pi, 0.0)  # a 1 Hz undamped rotation
    # the paper's EPI run: real NVP, 3 couplings, 2 x 50 units; 2,000 iterations per epoch
    epi_defaults: ClassVar[dict] = {"iterations_per_epoch": 2000, "batch_size": 500, "c0": 1e-3, "beta": 4.0,
                                    "hidden_units": 50}

    @property
    def feature_names(self):
        return ("real_lambda1", "imag_lambda1")

    @property
    def channel_names(self):
        return ("eigenvalue",)

    def simulate(self, key, theta):
        """``[batch, 1, 2]``: Re λ₁ and Im λ₁ (1/s) of A / τ; ``key`` is unused (deterministic)."""
        a = theta / TAU
        re, im = top_eigenvalue_2x2(a[:, 0] + a[:, 3], a[:, 0] * a[:, 3] - a[:, 1] * a[:, 2])
        return jnp.stack([re, im], -1)[:, None, :]

    def features(self, traces):
        return traces[:, 0, :]

    def emergent_property(self, name: str = "oscillation-1Hz") -> EmergentProperty:
        """``"oscillation-1Hz"``: Re λ₁ ≈ 0 (sd 0.25), Im λ₁ ≈ 2π (sd π/5)."""
        if name != "oscillation-1Hz":
            raise ValueError(f"{self.name} has the emergent property 'oscillation-1Hz', not {name!r}")
        return EmergentProperty(name, self.simulate_features, mean=(0.0, 2 * np.pi),
                                variance=(0.25**2, (np.pi / 5) ** 2), names=self.feature_names)

    def trajectories(self, theta, times, x0=X0):
        """x(t) = exp(A t / τ) x0 for each row of ``theta``: ``[batch, 2, len(times)]``."""
        a = jnp.asarray(theta, jnp.float32).reshape(-1, 2, 2) / TAU
        t = jnp.asarray(times, jnp.float32)
        expm = jax.vmap(lambda m: jax.vmap(lambda s: jax.scipy.linalg.expm(m * s))(t))(a)
        return jnp.einsum("btij,j->bit", expm, jnp.asarray(x0, jnp.float32))
