"""Vector fields the dynamics tools are checked on and applied to, each a JAX function of one state
``[n] -> [n]`` with its fixed point and what is known about it in closed form.

Closed-form benchmarks (reference notes ssm.md §2.2): the planar slow SSM of SSMTool (T1), an oscillatory
2-D SSM in 3-D (T2), a Stuart–Landau master with a slaved coordinate (T3), Duffing about x = 1 (T4), and
the 5-mass oscillator chain of SSMLearn's 4-D SSM example (Cenedese et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class System:
    """A vector field with a stable fixed point and the SSM to look for there."""

    name: str
    field: Callable
    fixed_point: np.ndarray
    dim: int  # dimension of the SSM asked for
    description: str
    known: dict = field(default_factory=dict)  # closed-form facts the results are compared with


def planar_t1(mu: float = float(np.sqrt(24.0))) -> System:
    """ẋ = −x, ẏ = −μ y + x² + x³ + x⁴ + x⁵: slow SSM y = Σ x^k / (μ − k) (SSMTool's benchmark, μ = √24)."""
    def f(u):
        x, y = u[0], u[1]
        return jnp.stack([-x, -mu * y + x**2 + x**3 + x**4 + x**5])
    return System("planar-t1", f, np.zeros(2), 1, planar_t1.__doc__,
                  {"graph_coefficients": [1 / (mu - k) for k in range(2, 6)]})


def oscillatory_t2(a: float = 0.05, omega: float = 1.0, b: float = 1.0) -> System:
    """ẋ = −a x − ω y, ẏ = ω x − a y, ż = −b z + x²: SSM z = [(d² + 2ω²) x² + 2ωd xy + 2ω² y²] / [d (d² + 4ω²)],
    d = b − 2a."""
    def f(u):
        x, y, z = u[0], u[1], u[2]
        return jnp.stack([-a * x - omega * y, omega * x - a * y, -b * z + x**2])
    d = b - 2 * a
    coeffs = np.array([d * d + 2 * omega**2, 2 * omega * d, 2 * omega**2]) / (d * (d * d + 4 * omega**2))
    return System("oscillatory-t2", f, np.zeros(3), 2, oscillatory_t2.__doc__, {"graph_x2_xy_y2": coeffs.tolist()})


def stuart_landau_t3(alpha=-0.1, omega=1.0, beta=-0.3, gamma=0.5, b=2.0) -> System:
    """Stuart–Landau (x, y) with ż = (α + iω) z + (β + iγ)|z|² z and a slaved w relaxing to g(x, y) =
    x²/2 − xy + 0.3 y³: the SSM is w = g, the backbones are α + βA² (damping) and ω + γA² (frequency)."""
    def f(u):
        x, y, w = u[0], u[1], u[2]
        r2 = x * x + y * y
        fx = alpha * x - omega * y + (beta * x - gamma * y) * r2
        fy = omega * x + alpha * y + (gamma * x + beta * y) * r2
        g = 0.5 * x**2 - x * y + 0.3 * y**3
        return jnp.stack([fx, fy, -b * (w - g) + (x - y) * fx + (-x + 0.9 * y**2) * fy])
    return System("stuart-landau-t3", f, np.zeros(3), 2, stuart_landau_t3.__doc__,
                  {"alpha": alpha, "omega": omega, "beta": beta, "gamma": gamma})


def duffing_t4(delta: float = 0.1) -> System:
    """ẍ = x − x³ − δẋ about x = 1 (ω0 = √2, a2 = 3, a3 = 1): backbone dω/d(A²) = 3a3/(8ω0) − 5a2²/(12ω0³)
    undamped (Lindstedt), −1.0615 with δ = 0.1."""
    def f(u):
        return jnp.stack([u[1], u[0] - u[0] ** 3 - delta * u[1]])
    w0 = np.sqrt(2.0)
    return System("duffing-t4", f, np.array([1.0, 0.0]), 2, duffing_t4.__doc__,
                  {"lindstedt_slope": 3 / (8 * w0) - 5 * 9 / (12 * w0**3), "damped_slope": -1.0615})


def oscillator_chain() -> System:
    """SSMLearn's oscillator chain (Cenedese et al. 2022): 5 masses M = diag(1.5, 1, 1, 1, 1), springs of
    stiffness 1 between neighbours and to a wall at mass 1 (mass 5 free), C = 0.002 M + 0.005 K, and at
    mass 1 the force 1.5 (0.33 q̇₁² + 3 q₁³ + 0.7 q₁² q̇₁ + 0.5 q̇₁³). State (q, q̇), 10-D; 4-D SSM over the
    two slowest pairs (published λ = −0.0011996 ± 0.28254i, −0.0025406 ± 0.785i), test NMTE 2.65 %."""
    n = 5
    M = np.diag([1.5, 1.0, 1.0, 1.0, 1.0])
    K = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    K[-1, -1] = 1.0
    C = 0.002 * M + 0.005 * K
    Minv = np.linalg.inv(M)
    MK, MC = jnp.asarray(Minv @ K), jnp.asarray(Minv @ C)

    def f(y):
        q, v = y[:n], y[n:]
        nonlinear = (0.33 * v[0] ** 2 + 3 * q[0] ** 3 + 0.7 * q[0] ** 2 * v[0] + 0.5 * v[0] ** 3) * 1.5 / M[0, 0]
        return jnp.concatenate([v, -(MK @ q + MC @ v) - nonlinear * jnp.eye(n)[0]])
    return System("oscillator-chain", f, np.zeros(2 * n), 4, oscillator_chain.__doc__,
                  {"published_eigenvalues": [[-0.0011996, 0.28254], [-0.0025406, 0.785]], "published_nmte": 0.026549})


CLOSED_FORM = {s.name: s for s in (planar_t1(), oscillatory_t2(), stuart_landau_t3(), duffing_t4(),
                                   oscillator_chain())}
