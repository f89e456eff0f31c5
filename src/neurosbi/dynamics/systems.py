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
    state_names: tuple[str, ...] | None = None


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


# ---------------------------------------------------------------------------------------------- neural systems
def mpr_node(delta: float = 1.0, eta: float = -5.0, J: float = 15.0) -> System:
    """Montbrió–Pazó–Roxin mean field (state r, v; τ = 1) at its low-activity stable node in the bistable
    regime Δ = 1, J = 15, η = −5 (eigenvalues −2.45, −5.40): a 1-D slow SSM, spectral quotient 2."""
    from ..models.montbrio import mean_field

    def f(u):
        dv, dr = mean_field(u[1], u[0], delta, eta, J)
        return jnp.stack([dr, dv])
    # fixed points: v⁴ + η v² − (JΔ/2π) v − (Δ/2)² = 0 with r = −Δ/(2π v); the node is the low-r root
    roots = np.roots([1.0, 0.0, eta, -J * delta / (2 * np.pi), -(delta / 2) ** 2])
    v = min((x.real for x in roots if abs(x.imag) < 1e-12 and x.real < 0), key=lambda x: -delta / (2 * np.pi * x))
    return System("mpr-node", f, np.array([-delta / (2 * np.pi * v), v]), 1, mpr_node.__doc__,
                  {"published_eigenvalues": [-2.45, -5.40]}, ("r", "v"))


def _hh_rates(V):
    """Classic squid-axon rates (1/ms) with V in mV, rest near −65 mV (Hodgkin & Huxley 1952, shifted)."""
    x_m, x_n = (V + 40.0) / 10.0, (V + 55.0) / 10.0
    am = jnp.where(jnp.abs(x_m) < 1e-6, 1.0, x_m / -jnp.expm1(-x_m))  # 0.1 (V + 40) / (1 − e^{−(V+40)/10})
    an = 0.1 * jnp.where(jnp.abs(x_n) < 1e-6, 1.0, x_n / -jnp.expm1(-x_n))
    return (am, 4.0 * jnp.exp(-(V + 65.0) / 18.0), 0.07 * jnp.exp(-(V + 65.0) / 20.0),
            1.0 / (1.0 + jnp.exp(-(V + 35.0) / 10.0)), an, 0.125 * jnp.exp(-(V + 65.0) / 80.0))


def hodgkin_huxley_rest(current: float = 0.0) -> System:
    """Hodgkin–Huxley squid axon (g_Na 120, g_K 36, g_L 0.3 mS/cm², E_Na 50, E_K −77, E_L −54.387 mV,
    C 1 µF/cm²; state V, m, h, n) at rest: eigenvalues −4.675, −0.2026 ± 0.3832i, −0.1207 /ms at I = 0
    (reference notes §4). A 3-D SSM (the complex pair and the slow real mode) removes the fast m-gate."""
    def f(u):
        V, m, h, n = u[0], u[1], u[2], u[3]
        am, bm, ah, bh, an, bn = _hh_rates(V)
        ionic = 120.0 * m**3 * h * (V - 50.0) + 36.0 * n**4 * (V + 77.0) + 0.3 * (V + 54.387)
        return jnp.stack([current - ionic, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n])

    return System("hh-rest", f, _root(f, [-65.0, 0.053, 0.596, 0.318]), 3, hodgkin_huxley_rest.__doc__,
                  {"published_eigenvalues": [[-0.1207, 0.0], [-0.2026, 0.3832], [-4.675, 0.0]]},
                  ("V (mV)", "m", "h", "n"))


def _sigmoid(x, a, theta):
    return 1.0 / (1.0 + jnp.exp(-a * (x - theta))) - 1.0 / (1.0 + np.exp(a * theta))


def _root(f, guess) -> np.ndarray:
    import jax
    import scipy.optimize
    with jax.enable_x64(True):
        fx = jax.jit(lambda u: f(jnp.asarray(u)))
        jac = jax.jit(jax.jacfwd(lambda u: f(jnp.asarray(u))))
        sol = scipy.optimize.root(lambda u: np.asarray(fx(u)), np.asarray(guess, float),
                                  jac=lambda u: np.asarray(jac(u)), tol=1e-13)
    if not sol.success:
        raise RuntimeError(f"fixed point search failed from {guess}: {sol.message}")
    return sol.x


def wilson_cowan_synaptic(drive: float = 1.0, tau_syn: float = 0.2) -> System:
    """Wilson–Cowan E–I rates (c1..c4 = 16, 12, 15, 3; a_e 1.3, θ_e 4; a_i 2, θ_i 3.7; τ = 1, drive P to E)
    read through first-order synapses: ṡ_X = (X − s_X)/τ_syn. State (E, I, s_E, s_I). At P = 1 the
    low-activity state is a stable node whose two slow rates are those of the E–I pair (reference notes §4:
    −0.38, −0.97 without synapses); the 2-D SSM over them removes the synaptic modes."""
    def f(u):
        exc, inh, sE, sI = u[0], u[1], u[2], u[3]
        return jnp.stack([-exc + _sigmoid(16.0 * sE - 12.0 * sI + drive, 1.3, 4.0),
                          -inh + _sigmoid(15.0 * sE - 3.0 * sI, 2.0, 3.7),
                          (exc - sE) / tau_syn, (inh - sI) / tau_syn])
    return System("wilson-cowan", f, _root(f, [0.01, 0.01, 0.01, 0.01]), 2, wilson_cowan_synaptic.__doc__,
                  state_names=("E", "I", "s_E", "s_I"))


def lowrank_rnn_line(neurons: int = 12, overlap: float = 0.95, seed: int = 0) -> System:
    """Rank-one rate network ẋ = −x + (m nᵀ / N) tanh(x) with nᵀm/N = ``overlap`` < 1: at x = 0 one slow
    eigenvalue −1 + overlap along m and −1 on every other direction: a slow line (an approximate line
    attractor, exact at overlap 1), the 1-D SSM whose reduced field ẋ = (overlap − 1) η − c η³ + ... says
    how fast activity drifts along it."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=neurons)
    other = rng.normal(size=neurons)
    other -= other @ m / (m @ m) * m
    n = overlap * neurons * m / (m @ m) + other  # nᵀm / N = overlap
    J = np.outer(m, n) / neurons

    def f(x):
        return -x + jnp.asarray(J) @ jnp.tanh(x)
    return System("rnn-line", f, np.zeros(neurons), 1, lowrank_rnn_line.__doc__,
                  {"slow_eigenvalue": overlap - 1.0, "direction": (m / np.linalg.norm(m)).tolist()},
                  tuple(f"x{i}" for i in range(neurons)))


NEURAL = {"mpr-node": mpr_node, "hh-rest": hodgkin_huxley_rest, "wilson-cowan": wilson_cowan_synaptic,
          "rnn-line": lowrank_rnn_line}

CLOSED_FORM = {s.name: s for s in (planar_t1(), oscillatory_t2(), stuart_landau_t3(), duffing_t4(),
                                   oscillator_chain())}
