"""Sequential Monte Carlo approximate Bayesian computation (SMC-ABC; Beaumont et al. 2009, Toni et al. 2009).

Populations of ``population_size`` weighted particles under decreasing tolerances ε_t:

- population 0 is drawn from the prior and accepted whole (ε_0 = ∞);
- ε_t is the weighted median of the previous population's distances (pyabc's default ``MedianEpsilon``),
  never below ``minimum_epsilon``;
- candidates are previous particles, picked by weight, moved by a Gaussian kernel whose covariance is
  the weighted particle covariance times Silverman's factor (4 / (n (d + 2)))^(2 / (d + 4)) (pyabc's
  default ``MultivariateNormalTransition``) or, with ``kernel="beaumont"``, times 2 (Beaumont et al.
  2009); a candidate outside the prior's support is redrawn without being simulated;
- a candidate is accepted when ``‖x − x_o‖₂ ≤ ε_t`` and weighted ``prior(θ) / Σ_j w_j K(θ | θ_j)``.

The run is converged when a population completes at ``ε ≤ minimum_epsilon``. It stops unconverged when
the acceptance rate of a population falls below ``min_acceptance_rate``, after ``max_populations``,
or when ``max_simulations`` / ``max_seconds`` are spent.

Why not pyabc (the library the EPI paper used): it simulates one parameter at a time in Python
processes; here every batch of candidates is one compiled, vectorised call of the model's
``simulate_features`` and the kernel density of all candidates against all particles is one matrix
product, which is what makes the comparison with EPI and NPE on the same machine a comparison of
methods rather than of dispatch overheads. Simulations whose features are NaN are counted
(``num_invalid``) and never accepted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .._errors import ObservationError


@dataclass
class ABCPopulation:
    """One completed population: its tolerance, cost and summary."""

    t: int
    epsilon: float
    num_simulations: int  # simulated candidates in this population (accepted or not)
    num_invalid: int  # of which NaN features
    num_outside: int  # kernel proposals outside the prior's support (redrawn, not simulated)
    acceptance_rate: float
    effective_sample_size: float
    seconds: float  # wall time since the run started, at the end of this population
    mean: list[float]
    std: list[float]


@dataclass
class ABCResult:
    """The last population (``theta [n, d]``, normalised ``weights [n]``, ``distances [n]``) and the history."""

    theta: np.ndarray
    weights: np.ndarray
    distances: np.ndarray
    populations: list[ABCPopulation] = field(default_factory=list)
    converged: bool = False
    stop_reason: str = ""
    kernel: str = "silverman"

    @property
    def num_simulations(self) -> int:
        return sum(p.num_simulations for p in self.populations)

    @property
    def epsilon(self) -> float:
        return self.populations[-1].epsilon

    def sample(self, key, n: int) -> np.ndarray:
        """``n`` draws from the final population (resampled by weight)."""
        idx = jax.random.choice(key, len(self.weights), (n,), p=jnp.asarray(self.weights))
        return self.theta[np.asarray(idx)]

    def as_dict(self) -> dict:
        return {"converged": self.converged, "stop_reason": self.stop_reason, "kernel": self.kernel,
                "epsilon": self.epsilon,
                "num_simulations": self.num_simulations, "populations": [asdict(p) for p in self.populations]}


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _kernel_covariance(theta: np.ndarray, weights: np.ndarray, kernel: str) -> np.ndarray:
    n, d = theta.shape
    mean = weights @ theta
    centred = theta - mean
    cov = (centred * weights[:, None]).T @ centred / max(1.0 - float(np.sum(weights**2)), 1e-12)
    factor = 2.0 if kernel == "beaumont" else (4.0 / (n * (d + 2))) ** (2.0 / (d + 4))
    cov = factor * cov
    # a ridge keeps the Cholesky factor defined when the particles span fewer than d directions
    return cov + 1e-9 * max(float(np.trace(cov)) / d, 1e-12) * np.eye(d)


@jax.jit
def _log_kernel_mixture(candidates, particles, log_weights, chol):
    """``log Σ_j w_j N(candidate | particle_j, L Lᵀ)`` up to the constant shared by every candidate."""
    solve = lambda a: jax.scipy.linalg.solve_triangular(chol, a.T, lower=True).T  # noqa: E731
    y, p = solve(candidates), solve(particles)
    sq = jnp.sum(y**2, 1)[:, None] + jnp.sum(p**2, 1)[None, :] - 2.0 * y @ p.T
    return jax.scipy.special.logsumexp(log_weights[None, :] - 0.5 * jnp.maximum(sq, 0.0), axis=1)


def smc_abc(
    simulator,
    prior,
    x_o,
    *,
    key,
    population_size: int = 1000,
    minimum_epsilon: float = 0.0,
    max_populations: int = 200,
    min_acceptance_rate: float = 1e-6,
    max_simulations: int | None = None,
    max_seconds: float | None = None,
    batch_size: int | None = None,
    kernel: Literal["silverman", "beaumont"] = "silverman",
    progress: bool = True,
    callback=None,
) -> ABCResult:
    """Run SMC-ABC for the observed features ``x_o``.

    Args:
        simulator: ``simulator(key, theta [batch, d]) -> x [batch, k]``, batched and jit-able (a
            model's ``simulate_features``).
        prior: a flowjax distribution with ``sample`` and ``log_prob`` (a model's ``prior``).
        x_o: observed features ``[k]``.
        key: PRNG key.
        population_size: accepted particles per population (1,000 in the EPI paper's runs).
        minimum_epsilon: the tolerance at which the run is converged.
        max_populations, min_acceptance_rate: stopping rules (200 and 1e-6 in the EPI paper).
        max_simulations, max_seconds: budgets; the run stops unconverged when one is spent.
        batch_size: candidates simulated per compiled call (default ``population_size``; fixed, so the
            simulator compiles once).
        kernel: ``"silverman"`` (pyabc's default bandwidth) or ``"beaumont"`` (twice the covariance).
        progress: a progress bar over the populations.
        callback: ``callback(population, result)`` after each population; returning True stops the run.
    """
    if population_size < 2:
        raise ValueError(f"population_size must be >= 2, got {population_size}")
    if kernel not in ("silverman", "beaumont"):
        raise ValueError(f"kernel must be 'silverman' or 'beaumont', got {kernel!r}")
    if not minimum_epsilon >= 0:
        raise ValueError(f"minimum_epsilon must be >= 0, got {minimum_epsilon}")
    x_o = jnp.asarray(x_o, jnp.float32).reshape(-1)
    if not bool(jnp.all(jnp.isfinite(x_o))):
        raise ObservationError(f"x_o has non-finite entries: {np.asarray(x_o)}; ABC needs a finite observation")
    batch = int(batch_size or population_size)

    @jax.jit
    def simulate_distances(k, theta):
        x = simulator(k, theta)
        if x.shape[-1] != x_o.shape[0]:
            raise ObservationError(f"the simulator returns {x.shape[-1]} features but x_o has {x_o.shape[0]}")
        return jnp.sqrt(jnp.sum((x - x_o) ** 2, -1))

    log_prior = jax.jit(lambda th: prior.log_prob(th))
    start = time.perf_counter()
    populations: list[ABCPopulation] = []
    theta = weights = distances = None
    converged, stop_reason = False, f"max_populations ({max_populations}) reached"
    bar = Progress(TextColumn("SMC-ABC {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), disable=not progress, transient=True)
    with bar:
        task = bar.add_task("", total=population_size)
        for t in range(max_populations):
            epsilon = np.inf if t == 0 else max(_weighted_median(distances, weights), minimum_epsilon)
            bar.update(task, completed=0, description=f"population {t}, ε = {epsilon:.3g}")
            if t > 0:
                cov = _kernel_covariance(theta, weights, kernel)
                chol = np.linalg.cholesky(cov)
                log_w = jnp.log(jnp.asarray(weights, jnp.float32))
            kept_theta, kept_dist, kept_logw = [], [], []
            n_sim = n_invalid = n_outside = n_acc = 0
            stopped = None
            while n_acc < population_size:
                key, k_prop, k_sim = jax.random.split(key, 3)
                if t == 0:
                    cand = np.asarray(prior.sample(k_prop, (batch,)))
                else:
                    cand, outside = _propose(k_prop, theta, weights, chol, log_prior, batch)
                    n_outside += outside
                    if cand is None:
                        stopped = "kernel proposals almost never fall inside the prior's support"
                        break
                dist = np.asarray(simulate_distances(k_sim, jnp.asarray(cand)))
                n_sim += batch
                invalid = ~np.isfinite(dist)
                n_invalid += int(invalid.sum())
                accept = ~invalid & (dist <= epsilon)
                kept_theta.append(cand[accept]), kept_dist.append(dist[accept])
                if t > 0:  # for the whole batch: fixed shapes, so both functions compile once
                    c = jnp.asarray(cand)
                    lw = log_prior(c) - _log_kernel_mixture(c, jnp.asarray(theta), log_w, jnp.asarray(chol, jnp.float32))
                    kept_logw.append(np.asarray(lw)[accept])
                n_acc += int(accept.sum())
                bar.update(task, completed=min(n_acc, population_size))
                if n_acc >= population_size:
                    break
                total = sum(p.num_simulations for p in populations) + n_sim
                if n_sim >= 10 * batch and n_acc / n_sim < min_acceptance_rate:
                    stopped = f"acceptance rate {n_acc / n_sim:.2e} below min_acceptance_rate {min_acceptance_rate}"
                elif max_simulations is not None and total >= max_simulations:
                    stopped = f"max_simulations ({max_simulations}) spent"
                elif max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    stopped = f"max_seconds ({max_seconds}) spent"
                if stopped:
                    break
            if stopped:
                stop_reason = stopped
                populations.append(ABCPopulation(t, float(epsilon), n_sim, n_invalid, n_outside,
                                                 n_acc / max(n_sim, 1), 0.0, time.perf_counter() - start, [], []))
                break
            theta = np.concatenate(kept_theta)[:population_size]
            distances = np.concatenate(kept_dist)[:population_size]
            if t == 0:
                weights = np.full(population_size, 1.0 / population_size)
            else:
                lw = np.concatenate(kept_logw)[:population_size].astype(np.float64)
                weights = np.exp(lw - lw.max())
                weights /= weights.sum()
            mean = weights @ theta
            std = np.sqrt(np.maximum(weights @ (theta - mean) ** 2, 0.0))
            populations.append(ABCPopulation(
                t, float(epsilon), n_sim, n_invalid, n_outside, n_acc / n_sim, float(1.0 / np.sum(weights**2)),
                time.perf_counter() - start, mean.tolist(), std.tolist()))
            result = ABCResult(theta, weights, distances, populations, False, "")
            if epsilon <= minimum_epsilon:
                converged, stop_reason = True, f"epsilon reached minimum_epsilon ({minimum_epsilon})"
                break
            if callback is not None and callback(populations[-1], result) is True:
                stop_reason = "the callback asked to stop"
                break
    if theta is None:
        raise ObservationError(f"SMC-ABC could not complete its prior population: {stop_reason}")
    return ABCResult(theta, weights, distances, populations, converged, stop_reason, kernel)


def _propose(key, theta, weights, chol, log_prior, n: int, max_tries: int = 1000):
    """``n`` kernel moves of particles picked by weight that land inside the prior's support, and how many
    proposals fell outside; ``(None, outside)`` if fewer than one in ``max_tries`` land inside."""
    out, have, outside = [], 0, 0
    for i in range(max_tries):
        k_pick, k_move = jax.random.split(jax.random.fold_in(key, i))
        idx = np.asarray(jax.random.choice(k_pick, len(weights), (n,), p=jnp.asarray(weights)))
        moved = theta[idx] + np.asarray(jax.random.normal(k_move, (n, theta.shape[1]))) @ chol.T
        inside = np.isfinite(np.asarray(log_prior(jnp.asarray(moved, jnp.float32))))
        out.append(moved[inside])
        have += int(inside.sum())
        outside += int((~inside).sum())
        if have >= n:
            return np.concatenate(out)[:n].astype(np.float32), outside
    return None, outside
