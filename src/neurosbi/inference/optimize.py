"""Point estimates by optimization: differential evolution, particle swarm, Bayesian optimization,
and MAP by L-BFGS through a differentiable simulator.

Every optimizer minimizes the same kind of objective, ``objective(theta [batch, dim]) -> [batch]``
(a JAX function; e.g. the L2 distance between simulated and observed traces, ``neurosbi.mpr_table.objective``),
inside a box ``(low, high)`` (the prior's support), and returns a :class:`PointEstimate` with the
best-so-far objective trace. Batched objectives matter: differential evolution and the particle
swarm evaluate a whole population per call, so a vectorized simulator runs it as one compiled batch.

Libraries, and why:
- differential evolution: ``scipy.optimize.differential_evolution`` (``vectorized=True``: one call
  per generation), as in the seed;
- particle swarm: written here (30 lines of numpy, global-best PSO with the seed's pyswarms settings).
  pyswarms, the seed's library, is unmaintained since 2021 and, on every optimizer it builds,
  reconfigures the root logger to INFO and opens ``report.log`` in the working directory; nevergrad's
  PSO pins bayesian-optimization below 2 (measured: installing it downgraded 3.4 to 1.4);
- Bayesian optimization: ``bayes_opt`` (the seed's library, maintained), GP with an upper-confidence
  bound of ``kappa``; sequential by nature (one evaluation per step);
- MAP: ``optax.lbfgs`` (zoom line search) on the box mapped to R^dim by a logistic transform, several
  starts run together under ``vmap``. With a flat prior on the box, MAP of a Gaussian likelihood is the
  least-squares point, so it minimizes the same objective as the others.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ShapeError
from .mcmc import box_transform, forward_mode, from_box


@dataclasses.dataclass(frozen=True)
class PointEstimate:
    """A point estimate and how it was found.

    Attributes:
        theta: the best parameters found ``[dim]``.
        value: the objective at ``theta``.
        trace: best objective so far after each iteration (generation, swarm step, BO step, L-BFGS step).
        num_evaluations: objective evaluations spent (single parameter vectors).
        seconds: wall time, compilation included.
        method: ``"de"``, ``"pso"``, ``"bo"`` or ``"map"``.
        info: method-specific extras (starts' optima for MAP, scipy's message for DE, ...).
    """

    theta: np.ndarray
    value: float
    trace: np.ndarray
    num_evaluations: int
    seconds: float
    method: str
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self, param_names=None) -> dict[str, Any]:
        names = param_names or [f"theta_{i}" for i in range(len(self.theta))]
        return {
            "method": self.method, "theta": dict(zip(names, map(float, self.theta))), "value": float(self.value),
            "num_evaluations": int(self.num_evaluations), "seconds": float(self.seconds),
            "iterations": int(len(self.trace)), "info": _jsonable(self.info),
        }


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _box(bounds) -> tuple[np.ndarray, np.ndarray]:
    low, high = (np.asarray(b, dtype=np.float64).ravel() for b in bounds)
    if low.shape != high.shape:
        raise ShapeError(f"bounds have {low.size} lower and {high.size} upper values; give one pair per parameter")
    if not np.all(np.isfinite(low) & np.isfinite(high)) or np.any(high <= low):
        raise ValueError(f"bounds must be finite with low < high for every parameter, got low={low}, high={high}")
    return low, high


class _Counted:
    """Wraps a batched objective: numpy in, numpy out, counts evaluations, NaN -> +inf (a failed
    simulation is a bad point, not a crash; the number of such points is reported)."""

    def __init__(self, objective, dim):
        self.objective, self.dim = objective, dim
        self.evaluations = 0
        self.non_finite = 0

    def __call__(self, theta) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if theta.shape[1] != self.dim:
            raise ShapeError(f"objective got theta with {theta.shape[1]} columns, expected {self.dim}")
        # numpy in: a float64 objective must see float64 parameters (jnp.asarray outside x64 would round
        # them to float32, which floored the MPR deterministic fit at an objective of 2.5e-5)
        values = np.asarray(self.objective(theta), dtype=np.float64).reshape(-1)
        if values.shape != (theta.shape[0],):
            raise ShapeError(f"objective must return one value per row of theta; got shape {values.shape} "
                             f"for {theta.shape[0]} rows")
        bad = ~np.isfinite(values)
        self.non_finite += int(bad.sum())
        self.evaluations += theta.shape[0]
        return np.where(bad, np.inf, values)


def differential_evolution(objective: Callable, bounds, *, seed: int = 0, popsize: int = 10, maxiter: int = 500,
                           tol: float = 0.0, atol: float = 0.0, polish: bool = True, **scipy_options) -> PointEstimate:
    """scipy's differential evolution on a batched objective (one call per generation).

    ``popsize`` is scipy's multiplier (population = popsize × dim); the seed used 10 and 500
    iterations. ``tol = atol = 0`` (default) runs every generation; scipy's default ``tol=0.01`` stops
    when the population's spread of objective values is small relative to its mean, which on an
    objective whose optimum is 0 never triggers early anyway. ``polish`` is scipy's (the seed's default):
    L-BFGS-B with finite differences from the best member, kept if better; it needs a float64 objective
    (in float32 the differences are rounding noise and the polish changes nothing).
    """
    from scipy import optimize

    low, high = _box(bounds)
    f = _Counted(objective, low.size)
    trace: list[float] = []

    def callback(intermediate_result):
        trace.append(float(intermediate_result.fun))

    start = time.perf_counter()
    result = optimize.differential_evolution(
        _de_objective(f), list(zip(low, high)), popsize=popsize, maxiter=maxiter, tol=tol, atol=atol, seed=seed,
        polish=polish, vectorized=True, updating="deferred", callback=callback, **scipy_options)
    info = {"message": str(result.message), "generations": int(result.nit), "non_finite_evaluations": f.non_finite}
    if trace and result.fun < trace[-1]:  # the polish improved on the last generation
        trace.append(float(result.fun))
    return PointEstimate(np.asarray(result.x), float(result.fun), np.asarray(trace), f.evaluations,
                         time.perf_counter() - start, "de", info)


def _de_objective(f):
    """scipy calls a vectorized objective with ``x [dim, S]`` and its polish with ``x [dim]`` (one point)."""

    def call(x):
        x = np.asarray(x)
        return f(x.T) if x.ndim == 2 else float(f(x[None])[0])

    return call


def particle_swarm(objective: Callable, bounds, *, seed: int = 0, n_particles: int = 10, iters: int = 500,
                   c1: float = 0.5, c2: float = 0.3, w: float = 0.9) -> PointEstimate:
    """Global-best particle swarm with inertia (Kennedy & Eberhart 1995; Shi & Eberhart 1998), the swarm
    evaluated as one batch per iteration. Defaults are the seed's pyswarms settings: 10 particles, 500
    iterations, c1 0.5, c2 0.3, w 0.9.

    v ← w v + c1 u1 (p_best − x) + c2 u2 (g_best − x), x ← x + v, u1, u2 ~ U[0, 1) per coordinate;
    a particle leaving the box is put back on its face and that velocity component zeroed.
    """
    low, high = _box(bounds)
    f = _Counted(objective, low.size)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    x = rng.uniform(low, high, (n_particles, low.size))
    v = rng.uniform(-1.0, 1.0, x.shape) * 0.1 * (high - low)
    cost = f(x)
    best_x, best_cost = x.copy(), cost.copy()
    trace = []
    for _ in range(iters):
        g = best_x[np.argmin(best_cost)]
        v = w * v + c1 * rng.random(x.shape) * (best_x - x) + c2 * rng.random(x.shape) * (g - x)
        x = x + v
        out = (x < low) | (x > high)
        x, v = np.clip(x, low, high), np.where(out, 0.0, v)
        cost = f(x)
        better = cost < best_cost
        best_x[better], best_cost[better] = x[better], cost[better]
        trace.append(float(best_cost.min()))
    best = int(np.argmin(best_cost))
    return PointEstimate(best_x[best], float(best_cost[best]), np.asarray(trace), f.evaluations,
                         time.perf_counter() - start, "pso", {"non_finite_evaluations": f.non_finite})


def bayesian_optimization(objective: Callable, bounds, *, seed: int = 0, init_points: int = 50, n_iter: int = 450,
                          kappa: float = 100.0, param_names=None) -> PointEstimate:
    """``bayes_opt``'s GP optimizer with an upper-confidence-bound acquisition of ``kappa`` (the seed's
    50 random points, then 450 steps, kappa 100), maximizing ``-objective``."""
    try:
        from bayes_opt import BayesianOptimization, acquisition
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("bayesian_optimization needs bayes_opt: pip install 'neurosbi[optim]'") from err

    low, high = _box(bounds)
    names = list(param_names or [f"p{i}" for i in range(low.size)])
    f = _Counted(objective, low.size)
    # bayes_opt's GP cannot take +inf: a failed simulation is scored as the worst finite value seen so far
    worst = [0.0]

    def target(**kwargs):
        value = float(f(np.array([[kwargs[n] for n in names]]))[0])
        if np.isfinite(value):
            worst[0] = max(worst[0], value)
            return -value
        return -worst[0]

    start = time.perf_counter()
    optimizer = BayesianOptimization(
        f=target, pbounds={n: (lo, hi) for n, lo, hi in zip(names, low, high)},
        acquisition_function=acquisition.UpperConfidenceBound(kappa=kappa),
        random_state=seed, verbose=0)
    optimizer.maximize(init_points=init_points, n_iter=n_iter)
    values = -np.array([r["target"] for r in optimizer.res])
    best = optimizer.max
    theta = np.array([best["params"][n] for n in names])
    return PointEstimate(theta, float(-best["target"]), np.minimum.accumulate(values), f.evaluations,
                         time.perf_counter() - start, "bo", {"non_finite_evaluations": f.non_finite})


def map_lbfgs(objective: Callable, bounds, key, *, num_starts: int = 8, max_steps: int = 200, starts=None,
              gtol: float = 1e-10, memory_size: int = 10, x64: bool = True, args=(),
              forward: bool = False) -> PointEstimate:
    """Multi-start L-BFGS (``optax.lbfgs``, zoom line search) through a differentiable objective.

    The box is mapped to R^dim by ``theta = low + (high - low) sigmoid(u)``; starts are uniform in
    the box (drawn from ``key``) unless ``starts [num_starts, dim]`` is given. All starts run together
    (``vmap``); each stops improving when its gradient norm in ``u`` falls below ``gtol``. The result is
    the best start; ``info["starts"]`` holds every start's optimum and value. ``x64`` (default) runs
    the search in float64: in float32 the line search stalls long before a trace fit is exact.
    ``args``: arrays with a leading ``[num_starts]`` axis, passed per start as ``objective(theta, *args_i)``
    (e.g. the value a profile holds fixed), so one compiled search serves many related problems.
    ``forward``: gradients in forward mode (``mcmc.forward_mode``), for few parameters and a long
    sequential simulation (the MPR skeleton: 10⁵ Euler steps).
    """
    with jax.enable_x64(x64):
        return _map_lbfgs(objective, bounds, key, num_starts, max_steps, starts, gtol, memory_size, tuple(args),
                          forward)


def _map_lbfgs(objective, bounds, key, num_starts, max_steps, starts, gtol, memory_size, args, forward):
    import optax

    low_np, high_np = _box(bounds)
    low, high = jnp.asarray(low_np), jnp.asarray(high_np)
    dim = low_np.size
    if starts is None:
        starts = low + (high - low) * jax.random.uniform(key, (num_starts, dim), dtype=low.dtype)
    starts = jnp.atleast_2d(jnp.asarray(starts, low.dtype))
    if starts.shape[1] != dim:
        raise ShapeError(f"starts have {starts.shape[1]} columns, expected {dim}")

    args = tuple(jnp.asarray(a) for a in args)
    if any(a.shape[:1] != (starts.shape[0],) for a in args):
        raise ShapeError(f"every array in args needs a leading axis of {starts.shape[0]} (one per start)")

    to_box = box_transform(low, high)[0]

    def loss(u, *a):
        return objective(to_box(u)[None], *(x[None] for x in a))[0]

    if forward:
        loss = forward_mode(loss)

    solver = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    @jax.vmap
    def step(u, state, *a):
        value, grad = value_and_grad(u, *a, state=state)
        updates, new_state = solver.update(grad, state, u, value=value, grad=grad,
                                           value_fn=lambda x: loss(x, *a))
        done = ~(jnp.linalg.norm(grad) > gtol)  # also stops a start whose gradient is NaN
        u_new = jnp.where(done, u, optax.apply_updates(u, updates))
        return u_new, jax.tree.map(lambda a, b: jnp.where(done, a, b), state, new_state), value, done

    start = time.perf_counter()
    u = from_box(starts, low, high)
    state = jax.vmap(solver.init)(u)
    trace, evaluations = [], 0
    best_values = np.full(starts.shape[0], np.inf)
    for _ in range(max_steps):
        u, state, value, done = step(u, state, *args)
        value = np.asarray(value)
        best_values = np.minimum(best_values, np.where(np.isfinite(value), value, np.inf))
        trace.append(float(best_values.min()))
        running = ~np.asarray(done)
        linesearch = np.asarray(optax.tree_utils.tree_get(state, "num_linesearch_steps"))
        evaluations += int((running * (1 + linesearch)).sum())
        if bool(np.all(done)):
            break
    theta_all = np.asarray(to_box(u))
    final = np.asarray(jax.vmap(loss)(u, *args))
    evaluations += starts.shape[0]
    final = np.where(np.isfinite(final), final, np.inf)
    best = int(np.argmin(final))
    return PointEstimate(theta_all[best], float(final[best]), np.asarray(trace), evaluations,
                         time.perf_counter() - start, "map",
                         {"starts": np.asarray(starts), "optima": theta_all, "values": final,
                          "steps": len(trace)})


OPTIMIZERS = {"de": differential_evolution, "pso": particle_swarm, "bo": bayesian_optimization, "map": map_lbfgs}
