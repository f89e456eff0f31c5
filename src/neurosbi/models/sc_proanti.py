"""The superior colliculus circuit of rapid task switching (Pro/Anti) that EPI studies (Bittner et al.
2021, after Duan et al. 2021; reference §1.8).

Four populations, a Pro and an Anti population in each hemisphere, in the paper's order
(LP, LA, RP, RA). Each has an internal variable u and an activity x = φ(u) with

    φ(u) = 0.5 tanh((u − a) / b) + 0.5,   a = 0.05, b = 0.5,
    τ du/dt = −u + W x + I(t) + noise,     τ = 0.09 s,

and the connectivity is set by four weights z = (sW, vW, dW, hW) ∈ [−5, 5]⁴:

    W = [[sW, vW, hW, dW],      self sW; vertical vW (Pro ⇄ Anti, same hemisphere);
         [vW, sW, dW, hW],      horizontal hW (same type, other hemisphere);
         [hW, dW, sW, vW],      diagonal dW (other type, other hemisphere).
         [dW, hW, vW, sW]]

Inputs (reference §1.8): 0.75 to all; a Pro bias 0.5 to the Pro populations throughout; the rule,
0.6 to the Pro populations on Pro trials or to the Anti populations on Anti trials, for t ≤ 1.2 s;
a choice input 0.25 to all for t > 1.2 s; the light, 0.5 to LP and LA (a Left stimulus) for
1.2 < t < 1.5 s. Only Left-stimulus trials are simulated (the circuit is left–right symmetric).

Integration as in the published code (``epi/SC_Circuit_4.py``): t = arange(0, 1.8, 0.024), 75 points,
74 forward-Euler steps of dt = 24 ms,

    u ← u + (dt / τ) (−u + W x + I(t_next) + σ ε),   ε ~ N(0, 1), σ = 0.2,

with the input of the time stepped to (the code's ``I[i]``). The noise is *not* scaled by √dt: the
code puts σ ε inside the bracket, so the per-step std of u is (dt/τ) σ ≈ 0.053; we follow the code
(an SDE with diffusion σ would have (σ/τ) √dt ≈ 0.34). Initial activity x(0) = 0.1 + 0.005 ε per
population, u(0) = φ⁻¹(x(0)) = a + b atanh(2 x(0) − 1). The code writes ``b atanh(2 x0 − 1) − a``,
which is not the inverse of its own φ (its u(0) is 2a = 0.1 lower); we use the true inverse, so x(0)
is exactly the drawn activity.

Two deliberate readings of the reference where the code differs: the rule input is on for
t ≤ 1.2 s (the paper; the code's ``t < 1.2`` drops it at the single time point t = 1.2 s, so
there it overlaps the choice input by one step less), and the Anti accuracy is the probability of
a correct Anti response, p_A = mean σ(100 (x_RP − x_LP)) (the code constrains the error rate
1 − p_A through mean σ(100 (x_LP − x_RP)); the two are the same statistic up to 1 − ·).

Statistics, at the end of the trial (t = 1.776 s, the last of the 75 points): over ``trials``
independent trials per condition (200 in the paper),

    p_P = mean σ(100 (x_LP − x_RP)) on Pro trials,   p_A = mean σ(100 (x_RP − x_LP)) on Anti trials.

Emergent property ``"accuracy-75"``: E[p_P] = E[p_A] = 0.75, Var = 0.075² each. Its statistics use
common random numbers: the parameters of one call share the same ``trials`` noise realisations.
Each row's accuracy is still the mean of ``trials`` independent trials (unbiased, same variance), but
one call draws 200 × 2 × 75 × 4 Gaussians instead of that times the batch, which halves an EPI step
with n = 100 (0.25 s → 0.13 s for the gradient on 2 cores, ``benchmarks/epi_step_cost.py``). ``fit_epi`` evaluates
its two half-batches with independent keys, which keeps its gradient of ‖R‖² unbiased; the convergence
test's batch means vary more (the shared noise does not average out over the batch), so the test is
valid and slightly more lenient than with independent noise. ``accuracy(key, z)`` keeps independent
noise per row.

Optogenetic silencing (``optogenetic_gamma`` = γ): x = (1 − γ) φ(u) during the delay 0.8 < t < 1.2 s
(the paper matches the experiments' Anti error rate at γ = 0.675); γ = 0 by default.

Connectivity modes: W is symmetric under swapping the hemispheres and under swapping the types,
so its eigenvectors are fixed: all (1, 1, 1, 1), side (1, 1, −1, −1) (left vs right),
task (1, −1, 1, −1) (Pro vs Anti) and diag (1, −1, −1, 1) in the order (LP, LA, RP, RA).
``connectivity_modes`` gives their eigenvalues λ = (λ_all, λ_side, λ_task, λ_diag) and
``connectivity_from_modes`` inverts it.

Example:
    >>> model = SCProAnti(trials=200)
    >>> z = jnp.array([[0.25, -2.5, -1.0, -1.25]])                 # sW, vW, dW, hW
    >>> model.accuracy(jax.random.key(0), z)                       # [[p_P, p_A]] ≈ [[0.74, 0.73]]
    >>> traces = model.simulate(jax.random.key(1), z)              # [1, 8, 75]: one Pro, one Anti trial
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ShapeError
from ._base import BoxModel, EmergentProperty, simulation_keys

POPULATIONS = ("LP", "LA", "RP", "RA")  # the paper's order: hemisphere major, type (Pro, Anti) minor
CONDITIONS = ("pro", "anti")
A, B = 0.05, 0.5  # φ's threshold and gain
TAU = 0.09  # s
DT = 0.024  # s, the Euler step
NOISE_STD = 0.2  # inside (dt / τ)(...), not scaled by √dt (the published code)
X0_MEAN, X0_STD = 0.1, 0.005  # initial activity
TIMES = np.arange(0.0, 1.8, DT)  # the code's grid, float64 so that the epoch boundaries compare exactly
NUM_TIMES = TIMES.shape[0]  # 75
SHARPNESS = 100.0  # of the sigmoid that scores a trial's choice

# the input strengths (reference §1.8)
I_CONSTANT, I_PRO_BIAS, I_RULE, I_CHOICE, I_LIGHT = 0.75, 0.5, 0.6, 0.25, 0.5
T_CUE_END, T_LIGHT_END = 1.2, 1.5  # s
T_DELAY = (0.8, 1.2)  # s, the optogenetic window

# z = MODES @ λ for λ = (all, side, task, diag) and z = (sW, vW, dW, hW): the eigenvalue of the mode with
# signs (1, e_A, e_R, e_A e_R) on (LP, LA, RP, RA) is sW + e_A vW + e_R hW + e_A e_R dW.
MODES = 0.25 * np.array([[1, 1, 1, 1],
                         [1, 1, -1, -1],
                         [1, -1, -1, 1],
                         [1, -1, 1, -1]], np.float32)


def phi(u):
    """Activity of an internal variable: 0.5 tanh((u − a)/b) + 0.5, in (0, 1)."""
    return 0.5 * jnp.tanh((u - A) / B) + 0.5


def phi_inverse(x):
    """The internal variable of an activity in (0, 1): a + b atanh(2x − 1)."""
    return A + B * jnp.arctanh(2 * x - 1)


def connectivity(theta):
    """W ``[batch, 4, 4]`` of z = (sW, vW, dW, hW) ``[batch, 4]``, rows and columns (LP, LA, RP, RA)."""
    theta = jnp.asarray(theta)
    s, v, d, h = (theta[..., i] for i in range(4))
    rows = [[s, v, h, d], [v, s, d, h], [h, d, s, v], [d, h, v, s]]
    return jnp.stack([jnp.stack(r, -1) for r in rows], -2)


def connectivity_modes(theta):
    """The eigenvalues λ = (λ_all, λ_side, λ_task, λ_diag) of W for z = (sW, vW, dW, hW), ``[..., 4]``.

    The reference (and the paper) write z = A λ with A = ¼[[1,1,1,1],[1,−1,−1,1],[1,1,−1,−1],[1,−1,1,−1]];
    with the W above that A maps the eigenvalues to (sW, dW, vW, hW), i.e. it is our ``MODES`` with its
    2nd and 3rd rows swapped. We keep λ the true eigenvalues of W for the named eigenvectors.
    """
    theta = jnp.asarray(theta)
    return theta @ jnp.asarray(np.linalg.inv(MODES).T, theta.dtype)


def connectivity_from_modes(modes):
    """z = (sW, vW, dW, hW) of eigenvalues λ = (λ_all, λ_side, λ_task, λ_diag), ``[..., 4]``."""
    modes = jnp.asarray(modes)
    return modes @ jnp.asarray(MODES.T, modes.dtype)


def input_schedule(stimulus: str = "left") -> np.ndarray:
    """The input I(t) of every time point, condition and population: ``[75, 2, 4]`` (time; Pro, Anti;
    LP, LA, RP, RA). ``stimulus``: the side of the light, ``"left"`` (the model's) or ``"right"``."""
    if stimulus not in ("left", "right"):
        raise ValueError(f"stimulus must be 'left' or 'right', got {stimulus!r}")
    t = TIMES[:, None, None]
    is_pro_pop = np.array([1.0, 0.0, 1.0, 0.0])
    rule_pops = np.stack([is_pro_pop, 1.0 - is_pro_pop])[None]  # [1, condition, population]
    light_pops = np.array([1.0, 1.0, 0.0, 0.0]) if stimulus == "left" else np.array([0.0, 0.0, 1.0, 1.0])
    inputs = I_CONSTANT + I_PRO_BIAS * is_pro_pop + np.zeros((NUM_TIMES, 2, 4))
    inputs = inputs + I_RULE * rule_pops * (t <= T_CUE_END)
    inputs = inputs + I_CHOICE * (t > T_CUE_END)
    inputs = inputs + I_LIGHT * light_pops * ((t > T_CUE_END) & (t < T_LIGHT_END))
    return inputs


def optogenetic_gains(gamma: float) -> np.ndarray:
    """The factor on φ(u) at every time point, ``[75]``: 1 − γ in the delay 0.8 < t < 1.2 s, else 1."""
    return np.where((TIMES > T_DELAY[0]) & (TIMES < T_DELAY[1]), 1.0 - gamma, 1.0)


def _recurrent_input(theta, x):
    """W x for x laid out ``[hemisphere, type, batch, ...]``: a hemisphere or type swap is a flip."""
    shape = (theta.shape[0],) + (1,) * (x.ndim - 3)
    s, v, d, h = (theta[:, i].reshape(shape) for i in range(4))
    return s * x + v * jnp.flip(x, 1) + h * jnp.flip(x, 0) + d * jnp.flip(x, (0, 1))


def euler(theta, x0, noise, inputs, gains, *, record: bool):
    """The published Euler scheme from activity ``x0``: the pure core of the simulator.

    Args:
        theta: ``[batch, 4]`` = (sW, vW, dW, hW).
        x0: initial activity ``[2, 2, batch, 2, trials]`` (hemisphere L/R; type Pro/Anti; batch;
            condition Pro/Anti; trial).
        noise: ``[74, *x0.shape]`` standard normal draws, one per step (zeros for the noiseless map).
        inputs: ``[75, 2, 4]`` as ``input_schedule`` (time, condition, population).
        gains: ``[75]`` factors on φ(u) (``optogenetic_gains``).
        record: return every time point (``[75, *x0.shape]``) or only the last (``x0.shape``).
    """
    dtype = x0.dtype
    # [time, hemisphere, type, 1 (batch), condition, 1 (trial)], the input of the time stepped to
    drive = jnp.asarray(inputs, dtype).reshape(NUM_TIMES, 2, 2, 2).transpose(0, 2, 3, 1)[1:, :, :, None, :, None]
    gain = jnp.asarray(gains, dtype)[1:]
    rate = DT / TAU

    def step(carry, step_inputs):
        u, x = carry
        eps, i_next, g_next = step_inputs
        u = u + rate * (-u + _recurrent_input(theta, x) + i_next + NOISE_STD * eps)
        x = g_next * phi(u)
        return (u, x), (x if record else None)

    (_, x_end), xs = jax.lax.scan(step, (phi_inverse(x0), x0), (noise, drive, gain))
    return jnp.concatenate([x0[None], xs]) if record else x_end


def choice_scores(x_end):
    """Soft correct-choice scores of final activities ``[2, 2, batch, 2, trials]``: ``[batch, 2, trials]``,
    σ(100 (x_LP − x_RP)) on Pro trials and σ(100 (x_RP − x_LP)) on Anti trials."""
    left_minus_right = x_end[0, 0] - x_end[1, 0]  # Pro populations, [batch, condition, trial]
    sign = jnp.asarray([1.0, -1.0], x_end.dtype)[:, None]  # Pro trials: left is correct; Anti: right
    return jax.nn.sigmoid(SHARPNESS * sign * left_minus_right)


class SCProAnti(BoxModel):
    """Four-population SC model of Pro/Anti task switching; parameters z = (sW, vW, dW, hW).

    ``simulate`` runs one Pro and one Anti trial per parameter; ``accuracy`` averages ``trials`` of
    each (the statistics of the emergent property). ``optogenetic_gamma`` silences the circuit by the
    factor 1 − γ during the delay.
    """

    trials: int = eqx.field(static=True, default=200)
    optogenetic_gamma: float = eqx.field(static=True, default=0.0)

    name: ClassVar[str] = "sc-proanti"
    per_simulation_keys: ClassVar[bool] = True
    _names: ClassVar[tuple[str, ...]] = ("sW", "vW", "dW", "hW")
    _low: ClassVar[tuple[float, ...]] = (-5.0,) * 4
    _high: ClassVar[tuple[float, ...]] = (5.0,) * 4
    _truth: ClassVar[tuple[float, ...]] = (0.25, -2.5, -1.0, -1.25)  # p_P ≈ p_A ≈ 0.73 (found by search)
    # the paper's EPI run: real NVP, 3 couplings, 2 x 50 units, n = 100, c0 = 1e2, beta = 2, 2,000 per epoch,
    # convergence tested on batches of N_test = 25 = n / 4 (the paper; its script: nu = 0.5)
    epi_defaults: ClassVar[dict] = {"iterations_per_epoch": 2000, "batch_size": 100, "c0": 100.0, "beta": 2.0,
                                    "hidden_units": 50, "test_fraction": 0.25}

    def __check_init__(self):
        if isinstance(self.trials, bool) or not isinstance(self.trials, (int, np.integer)) or self.trials < 1:
            raise ValueError(f"trials must be an integer >= 1 (trials per condition per parameter; paper: 200), "
                             f"got {self.trials!r}")
        if not (np.isfinite(self.optogenetic_gamma) and 0.0 <= self.optogenetic_gamma <= 1.0):
            raise ValueError(f"optogenetic_gamma must be in [0, 1] (0: no silencing; paper: 0.675 matches the "
                             f"experiments), got {self.optogenetic_gamma!r}")

    @property
    def channel_names(self):
        return tuple(f"x_{c}_{p}" for c in CONDITIONS for p in POPULATIONS)

    @property
    def feature_names(self):
        return ("p_pro", "p_anti")

    @property
    def dt(self):
        return DT

    @property
    def trace_shape(self):
        return (8, NUM_TIMES)

    def _theta(self, theta):
        theta = jnp.asarray(theta)
        if not jnp.issubdtype(theta.dtype, jnp.floating):
            theta = theta.astype(jnp.float32)
        if theta.ndim != 2 or theta.shape[1] != 4:
            raise ShapeError(f"theta must be [batch, 4] = (sW, vW, dW, hW), got shape {theta.shape}; "
                             "reshape a single parameter to [1, 4]")
        return theta

    def _run(self, key, theta, trials: int, record: bool, common: bool = False):
        """Draw all the noise in one call (each row from its own key, or one draw for all rows when
        ``common``) and integrate."""
        batch, dtype = theta.shape[0], theta.dtype
        shape = (NUM_TIMES, 2, 2, 2, trials)  # [75, hemisphere, type, condition, trial]
        if common:
            eps = jnp.broadcast_to(jax.random.normal(key, shape, dtype)[:, :, :, None], shape[:3] + (batch,) + shape[3:])
        else:
            keys = simulation_keys(key, batch)
            # slice 0 sets x(0), slices 1..74 the steps
            eps = jnp.moveaxis(jax.vmap(lambda k: jax.random.normal(k, shape, dtype))(keys), 0, 3)
        # eps: [75, 2, 2, batch, 2, trials]
        x0 = jnp.clip(X0_MEAN + X0_STD * eps[0], 1e-6, 1.0 - 1e-6)
        return euler(theta, x0, eps[1:], input_schedule("left"), optogenetic_gains(self.optogenetic_gamma),
                     record=record)

    def simulate(self, key, theta):
        """One Pro and one Anti trial per parameter row: activities ``[batch, 8, 75]``, channels
        (Pro trial: LP, LA, RP, RA; Anti trial: LP, LA, RP, RA), every 24 ms from t = 0.
        ``key``: one key or ``[batch]`` keys (one per simulation)."""
        theta = self._theta(theta)
        xs = self._run(key, theta, 1, record=True)[..., 0]  # [75, hemisphere, type, batch, condition]
        return jnp.transpose(xs, (3, 4, 1, 2, 0)).reshape(theta.shape[0], 8, NUM_TIMES)

    def features(self, traces):
        """The single trial's soft correct-choice scores ``[batch, 2]``: σ(100 (x_LP − x_RP)) of the
        Pro trial and σ(100 (x_RP − x_LP)) of the Anti trial, at the last time point."""
        if traces.ndim != 3 or traces.shape[1] != 8:
            raise ShapeError(f"traces must be [batch, 8, time] (x of LP, LA, RP, RA on a Pro then an Anti trial), "
                             f"got shape {traces.shape}")
        end = traces[:, :, -1]
        return jax.nn.sigmoid(SHARPNESS * jnp.stack([end[:, 0] - end[:, 2], end[:, 6] - end[:, 4]], -1))

    def accuracy(self, key, theta, *, common_noise: bool = False):
        """(p_P, p_A) ``[batch, 2]``, each the mean of ``trials`` trials. Differentiable in ``theta``;
        ``key``: one key or ``[batch]`` keys. ``common_noise``: every row sees the same ``trials`` noise
        realisations (common random numbers; one key only), the emergent property's statistics."""
        theta = self._theta(theta)
        if common_noise and jnp.ndim(key) != 0:
            raise ValueError("common_noise=True takes one key (the rows share its noise), got keys of shape "
                             f"{jnp.shape(key)}")
        scores = choice_scores(self._run(key, theta, self.trials, record=False, common=common_noise))
        return jnp.mean(scores, axis=-1)

    def common_noise_accuracy(self, key, theta):
        """``accuracy`` with common random numbers: the statistics of the emergent property."""
        return self.accuracy(key, theta, common_noise=True)

    def emergent_property(self, name: str = "accuracy-75") -> EmergentProperty:
        """``"accuracy-75"``: rapid task switching at 75 % accuracy, E[p_P] = E[p_A] = 0.75, sd 0.075."""
        if name != "accuracy-75":
            raise ValueError(f"{self.name} has the emergent property 'accuracy-75', not {name!r}")
        return EmergentProperty(name, self.common_noise_accuracy, mean=(0.75, 0.75), variance=(0.075**2,) * 2,
                                names=("p_pro", "p_anti"), simulations_per_z=2 * self.trials)
