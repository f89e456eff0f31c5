"""Rank-2 recurrent network whose stable amplification EPI studies (Bittner et al. 2021; reference §1.6).

τ dx/dt = −x + W x, W = U Vᵀ with U = [U₁ U₂] + g χ_U and V = [V₁ V₂] + g χ_V (χ ~ N(0, 1), N × 2),
g = 0.01. Parameters z = (U₁, U₂, V₁, V₂) ∈ [−1, 1]^{4N}. Statistics: Re λ₁ of W (the nonzero
eigenvalues of a rank-2 W are those of the 2 × 2 matrix VᵀU) and λ₁ˢ, the largest eigenvalue of the
symmetric part Wˢ = (W + Wᵀ)/2. Stable amplification (Bondanelli & Ostojic 2020): Re λ₁ < 1 < λ₁ˢ;
the emergent property E[Re λ₁] = 0.5, E[λ₁ˢ] = 1.5, both with variance 0.25².

λ₁ˢ without an N × N eigensolver: Wˢ = Q B Qᵀ with Q = [U V] (N × 4) and B = [[0, I/2], [I/2, 0]],
so its nonzero eigenvalues are those of Rᵀ B R, with R a square root (R Rᵀ = QᵀQ, from the 4 × 4
Gram matrix's eigendecomposition, so a rank-deficient Q is handled). The other N − 4 eigenvalues are 0,
and Rᵀ B R has a non-negative eigenvalue (B has two positive ones), so λ₁ˢ is its largest. The cost is O(N) per network, which is what lets EPI reach N = 250 (|z| = 1,000) on two
cores. For N ≤ 4 the N × N eigenproblem is solved directly.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import priors as _priors
from ._base import EmergentProperty, Model
from .lds import top_eigenvalue_2x2


class RankTwoRNN(Model):
    """Rank-2 RNN connectivity with ``num_neurons`` neurons and structural noise ``g``."""

    num_neurons: int = eqx.field(static=True, default=2)
    g: float = eqx.field(static=True, default=0.01)

    name: ClassVar[str] = "rank2-rnn"
    # the paper's EPI run: real NVP, 3 couplings, 2 x 100 units, n = 200, c0 = 1e3, beta = 4, 500 per epoch
    epi_defaults: ClassVar[dict] = {"iterations_per_epoch": 500, "batch_size": 200, "c0": 1e3, "beta": 4.0,
                                    "hidden_units": 100}

    def __check_init__(self):
        if not (isinstance(self.num_neurons, int) and self.num_neurons >= 2):
            raise ValueError(f"num_neurons must be an integer >= 2, got {self.num_neurons!r}")
        if not self.g >= 0:
            raise ValueError(f"g must be >= 0, got {self.g}")

    @property
    def param_names(self):
        n = self.num_neurons
        return tuple(f"{vec}[{i}]" for vec in ("U1", "U2", "V1", "V2") for i in range(n))

    @property
    def prior(self):
        d = 4 * self.num_neurons
        return _priors.box_uniform(-np.ones(d), np.ones(d))

    @property
    def default_truth(self):
        """A stably amplifying network on neurons 0 and 1: W[:2, :2] = [[0.5, 2], [0, 0.5]], so Re λ₁ = 0.5
        and λ₁ˢ = 1.5 (without noise); other neurons unconnected."""
        n = self.num_neurons
        vectors = np.zeros((4, n))
        vectors[:, :2] = [[1.0, 1 / 6], [1.0, 1 / 3], [1.0, 1.0], [-0.5, 1.0]]  # U1, U2, V1, V2
        return vectors.ravel()

    @property
    def feature_names(self):
        return ("real_lambda1", "lambda1_sym")

    @property
    def channel_names(self):
        return ("eigenvalue",)

    def connectivity(self, key, theta):
        """``(U, V)``, each ``[batch, N, 2]``, with the structural noise drawn from ``key``."""
        n = self.num_neurons
        z = theta.reshape(theta.shape[0], 4, n)
        u = jnp.stack([z[:, 0], z[:, 1]], -1)
        v = jnp.stack([z[:, 2], z[:, 3]], -1)
        ku, kv = jax.random.split(key)
        return (u + self.g * jax.random.normal(ku, u.shape, u.dtype),
                v + self.g * jax.random.normal(kv, v.shape, v.dtype))

    def simulate(self, key, theta):
        """``[batch, 1, 2]``: Re λ₁ of W and λ₁ˢ of its symmetric part."""
        u, v = self.connectivity(key, theta)
        wr = jnp.einsum("bni,bnj->bij", v, u)  # Vᵀ U, 2 x 2
        re, _ = top_eigenvalue_2x2(wr[:, 0, 0] + wr[:, 1, 1], wr[:, 0, 0] * wr[:, 1, 1] - wr[:, 0, 1] * wr[:, 1, 0])
        if self.num_neurons <= 4:
            w = jnp.einsum("bni,bmi->bnm", u, v)
            sym = jnp.linalg.eigvalsh((w + jnp.swapaxes(w, 1, 2)) / 2)[:, -1]
        else:
            q = jnp.concatenate([u, v], -1)
            gram_values, gram_vectors = jnp.linalg.eigh(jnp.einsum("bni,bnj->bij", q, q))
            root = gram_vectors * jnp.sqrt(jnp.maximum(gram_values, 0.0))[:, None, :]  # G = root rootᵀ
            half = jnp.eye(2) / 2
            b = jnp.block([[jnp.zeros((2, 2)), half], [half, jnp.zeros((2, 2))]])
            sym = jnp.linalg.eigvalsh(jnp.einsum("bji,jk,bkl->bil", root, b, root))[:, -1]
        return jnp.stack([re, sym], -1)[:, None, :]

    def features(self, traces):
        return traces[:, 0, :]

    def emergent_property(self, name: str = "stable-amplification") -> EmergentProperty:
        """``"stable-amplification"``: Re λ₁ ≈ 0.5 and λ₁ˢ ≈ 1.5, both sd 0.25."""
        if name != "stable-amplification":
            raise ValueError(f"{self.name} has the emergent property 'stable-amplification', not {name!r}")
        return EmergentProperty(name, self.simulate_features, mean=(0.5, 1.5), variance=(0.25**2, 0.25**2),
                                names=self.feature_names)
