"""Optimizers find the known optimum of cheap objectives inside a box (issue 7, scope 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.inference import optimize

LOW, HIGH = np.array([0.1, -10.0, 5.0]), np.array([5.0, -3.0, 20.0])
OPTIMUM = np.array([0.7, -4.6, 14.5])
SCALE = HIGH - LOW


def bowl(theta):
    """A tilted quadratic bowl with its minimum (0) at OPTIMUM, coordinates scaled to the box."""
    z = (theta - OPTIMUM) / SCALE
    return jnp.sum(z**2, axis=-1) + 0.5 * z[:, 0] * z[:, 1]


def test_differential_evolution_finds_the_optimum():
    result = optimize.differential_evolution(bowl, (LOW, HIGH), seed=0, maxiter=200, polish=False)
    np.testing.assert_allclose(result.theta, OPTIMUM, atol=1e-3 * SCALE.max())
    assert result.method == "de" and result.value < 1e-8
    generations = result.info["generations"]  # stops early once the whole population sits at the optimum
    assert len(result.trace) == generations <= 200 and np.all(np.diff(result.trace) <= 0)
    assert result.num_evaluations == 30 * (generations + 1)  # initial population + one per generation


def test_differential_evolution_polish_refines_the_best_member():
    def bowl64(theta):  # scipy's polish differentiates by finite differences: it needs a float64 objective
        z = (np.asarray(theta) - OPTIMUM) / SCALE
        return np.sum(z**2, axis=-1) + 0.5 * z[:, 0] * z[:, 1]

    coarse = optimize.differential_evolution(bowl64, (LOW, HIGH), seed=0, maxiter=5, polish=False)
    polished = optimize.differential_evolution(bowl64, (LOW, HIGH), seed=0, maxiter=5)
    assert polished.trace[-2] == coarse.value  # the same generations, then the polish
    assert polished.value < 1e-3 * coarse.value
    np.testing.assert_allclose(polished.theta, OPTIMUM, atol=1e-3)


def test_a_float64_objective_sees_float64_parameters():
    seen = []

    def recorded(theta):
        seen.append(np.asarray(theta).dtype)
        return np.sum((np.asarray(theta) - OPTIMUM) ** 2, axis=-1)

    optimize.differential_evolution(recorded, (LOW, HIGH), seed=0, maxiter=2)
    optimize.particle_swarm(recorded, (LOW, HIGH), seed=0, iters=2)
    assert seen and all(d == np.float64 for d in seen)


def test_particle_swarm_finds_the_optimum():
    result = optimize.particle_swarm(bowl, (LOW, HIGH), seed=0, n_particles=20, iters=300)
    assert np.all((result.theta >= LOW) & (result.theta <= HIGH))
    np.testing.assert_allclose(result.theta, OPTIMUM, atol=0.02 * SCALE.max())
    again = optimize.particle_swarm(bowl, (LOW, HIGH), seed=0, n_particles=20, iters=300)
    np.testing.assert_array_equal(result.theta, again.theta)  # the seed fixes the run


def test_bayesian_optimization_finds_the_optimum():
    result = optimize.bayesian_optimization(bowl, (LOW, HIGH), seed=0, init_points=10, n_iter=25, kappa=2.5)
    assert result.value < 1e-2  # a GP on a 3-D bowl: close to, not exactly at, the minimum
    assert result.num_evaluations == 35 and len(result.trace) == 35


def test_map_lbfgs_finds_the_optimum_of_a_narrow_valley():
    def rosenbrock(theta):  # minimum at OPTIMUM, a curved valley
        z = (theta - OPTIMUM) / SCALE + 1.0
        return jnp.sum(100 * (z[:, 1:] - z[:, :-1] ** 2) ** 2 + (1 - z[:, :-1]) ** 2, axis=-1)

    result = optimize.map_lbfgs(rosenbrock, (LOW, HIGH), jax.random.key(0), num_starts=4, max_steps=300)
    np.testing.assert_allclose(result.theta, OPTIMUM, rtol=1e-5)
    assert result.info["optima"].shape == (4, 3) and result.num_evaluations > 4
    # forward-mode gradients: the same search, step for step (gradients agree to rounding)
    forward = optimize.map_lbfgs(rosenbrock, (LOW, HIGH), jax.random.key(0), num_starts=4, max_steps=300,
                                 forward=True)
    np.testing.assert_allclose(forward.theta, result.theta, rtol=1e-9)
    assert forward.info["steps"] == result.info["steps"]


def test_failed_evaluations_are_counted_not_fatal():
    def half_broken(theta):
        return jnp.where(theta[:, 0] > 2.5, jnp.nan, bowl(theta))

    result = optimize.differential_evolution(half_broken, (LOW, HIGH), seed=1, maxiter=50)
    assert result.info["non_finite_evaluations"] > 0 and np.isfinite(result.value)


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="low < high"):
        optimize.differential_evolution(bowl, (HIGH, LOW))
