"""The superior colliculus Pro/Anti model: connectivity structure and modes, inputs, the Euler scheme
against a hand-written loop, left-right symmetry, accuracies, gradients, input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.models.sc_proanti import (
    DT,
    NUM_TIMES,
    TAU,
    SCProAnti,
    connectivity,
    connectivity_from_modes,
    connectivity_modes,
    euler,
    input_schedule,
    optogenetic_gains,
    phi,
    phi_inverse,
)

TRIALS = 1000  # per condition: the standard error of an accuracy near 0.75 is 0.014
BALANCED = (0.25, -2.5, -1.0, -1.25)  # found by a random search of the box, then refined: p_P ≈ p_A ≈ 0.73
PRO_ONLY = (-1.0, 1.0, -1.0, -0.5)  # always answers Pro: p_P ≈ 1, p_A ≈ 0
THETA = jnp.asarray([BALANCED, PRO_ONLY, (0.0, 0.0, 0.0, 0.0)], jnp.float32)


@pytest.fixture(scope="module")
def model():
    return SCProAnti(trials=TRIALS)


@pytest.fixture(scope="module")
def accuracy(model):
    """(p_P, p_A) of the three THETA rows with TRIALS trials each."""
    return np.asarray(jax.jit(model.accuracy)(jax.random.key(0), THETA))


@pytest.fixture(scope="module")
def simulate(model):
    return jax.jit(model.simulate)


@pytest.fixture(scope="module")
def run_euler():
    return jax.jit(euler, static_argnames="record")


def test_shapes_names_and_property(model, simulate):
    traces = simulate(jax.random.key(1), THETA)
    assert traces.shape == (3, 8, NUM_TIMES) == (3, *model.trace_shape) and traces.dtype == jnp.float32
    assert NUM_TIMES == 75 and model.dt == DT
    assert model.channel_names[:4] == ("x_pro_LP", "x_pro_LA", "x_pro_RP", "x_pro_RA")
    assert model.param_names == ("sW", "vW", "dW", "hW") and model.name == "sc-proanti"
    np.testing.assert_allclose(traces[:, :, 0], 0.1, atol=0.04)  # x(0) = 0.1 + 0.005 N(0, 1)
    f = model.features(traces)
    assert f.shape == (3, 2) and np.all((f >= 0) & (f <= 1))
    prop = model.emergent_property()
    assert prop.name == "accuracy-75" and prop.names == ("p_pro", "p_anti")
    assert prop.mean == (0.75, 0.75) and np.allclose(prop.variance, 0.075**2)
    assert prop.simulations_per_z == 2 * TRIALS
    with pytest.raises(ValueError, match="accuracy-75"):
        model.emergent_property("accuracy-90")


def test_per_simulation_keys_make_each_row_independent_of_the_batch(simulate):
    keys = jax.random.split(jax.random.key(2), 3)
    together = simulate(keys, THETA)
    alone = simulate(keys[1:2], THETA[1:2])
    np.testing.assert_allclose(together[1:2], alone, rtol=1e-6, atol=1e-7)


def test_connectivity_structure():
    s, v, d, h = 1.0, 2.0, 3.0, 4.0
    expected = [[s, v, h, d], [v, s, d, h], [h, d, s, v], [d, h, v, s]]
    np.testing.assert_array_equal(connectivity(jnp.asarray([[s, v, d, h]])), [expected])
    w = np.asarray(connectivity(jnp.asarray([[s, v, d, h]])))[0]
    swap_hemispheres = [2, 3, 0, 1]
    np.testing.assert_array_equal(w[np.ix_(swap_hemispheres, swap_hemispheres)], w)


def test_modes_are_the_eigenvalues_of_w_and_round_trip():
    z = jax.random.uniform(jax.random.key(3), (5, 4), minval=-5, maxval=5)
    lam = connectivity_modes(z)
    np.testing.assert_allclose(connectivity_from_modes(lam), z, atol=1e-5)
    np.testing.assert_allclose(connectivity_modes(connectivity_from_modes(lam)), lam, atol=1e-5)
    vectors = np.array([[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]], np.float32)  # all side task diag
    w = np.asarray(connectivity(z))
    np.testing.assert_allclose(np.einsum("bij,mj->bmi", w, vectors), np.asarray(lam)[:, :, None] * vectors,
                               atol=1e-4)
    np.testing.assert_allclose(connectivity_modes(jnp.asarray([[1.0, 0.0, 0.0, 0.0]])), [[1.0, 1.0, 1.0, 1.0]])


def test_input_schedule_and_optogenetic_window():
    inputs = input_schedule()
    assert inputs.shape == (75, 2, 4)
    np.testing.assert_allclose(inputs[0], [[1.85, 0.75, 1.85, 0.75], [1.25, 1.35, 1.25, 1.35]])
    np.testing.assert_allclose(inputs[50], inputs[0])  # t = 1.2 s: rule still on, no choice input yet
    np.testing.assert_allclose(inputs[51], [[2.0, 1.5, 1.5, 1.0]] * 2)  # choice + light on LP, LA
    np.testing.assert_allclose(inputs[62], inputs[51])  # t = 1.488 s: light still on
    np.testing.assert_allclose(inputs[63], [[1.5, 1.0, 1.5, 1.0]] * 2)  # t = 1.512 s: light off
    np.testing.assert_allclose(input_schedule("right")[:, :, [2, 3, 0, 1]], inputs)
    gains = optogenetic_gains(0.5)
    assert np.all(gains[34:50] == 0.5) and gains[33] == 1.0 and gains[50] == 1.0  # 0.8 < t < 1.2 s


def _numpy_euler(theta, x0, noise, inputs):
    """The scheme written out: one population vector per trial, W @ x, paper order (LP, LA, RP, RA)."""
    w = np.asarray(connectivity(theta), np.float64)[0]
    xs = [x0]
    u = 0.05 + 0.5 * np.arctanh(2 * x0 - 1)
    for k in range(1, NUM_TIMES):
        u = u + DT / TAU * (-u + w @ xs[-1] + inputs[k] + 0.2 * noise[k - 1])
        xs.append(0.5 * np.tanh((u - 0.05) / 0.5) + 0.5)
    return np.stack(xs)


def _layout(pop_vectors):
    """(condition, population) ``[..., 2, 4]`` -> the simulator's ``[..., 2, 2, 1, 2, 1]``."""
    a = np.asarray(pop_vectors).reshape(*pop_vectors.shape[:-2], 2, 2, 2)  # condition, hemisphere, type
    return np.moveaxis(a, -3, -1)[..., None, :, None]


@pytest.mark.parametrize("theta", [(0.0, 0.0, 0.0, 0.0), (0.7, -1.3, 0.4, -2.1)])
def test_euler_matches_a_hand_written_loop(run_euler, theta):
    theta = jnp.asarray([theta], jnp.float32)
    rng = np.random.default_rng(4)
    x0 = 0.1 + 0.005 * rng.standard_normal((2, 4))  # condition, population
    noise = np.zeros((NUM_TIMES - 1, 2, 4)) if not theta.any() else rng.standard_normal((NUM_TIMES - 1, 2, 4))
    inputs = input_schedule()
    ours = run_euler(theta, jnp.asarray(_layout(x0), jnp.float32), jnp.asarray(_layout(noise), jnp.float32),
                     inputs, optogenetic_gains(0.0), record=True)
    expected = np.stack([_numpy_euler(theta, x0[c], noise[:, c], inputs[:, c]) for c in range(2)], 1)
    np.testing.assert_allclose(ours, _layout(expected), atol=2e-5)
    if not theta.any():  # first step by hand: LP on a Pro trial gets 0.75 + 0.5 + 0.6, and nothing else
        u0 = 0.05 + 0.5 * np.arctanh(2 * x0[0, 0] - 1)
        u1 = u0 + DT / TAU * (-u0 + 1.85)
        np.testing.assert_allclose(ours[1, 0, 0, 0, 0, 0], 0.5 * np.tanh((u1 - 0.05) / 0.5) + 0.5, rtol=1e-5)


def test_phi_inverse_inverts_phi():
    x = jnp.linspace(0.01, 0.99, 7)
    np.testing.assert_allclose(phi(phi_inverse(x)), x, atol=1e-6)


def test_left_right_symmetry(run_euler):
    """Swapping the hemispheres of the initial state, the noise and the light swaps the activities."""
    theta = jnp.asarray([BALANCED, PRO_ONLY], jnp.float32)
    k1, k2 = jax.random.split(jax.random.key(5))
    x0 = 0.1 + 0.005 * jax.random.normal(k1, (2, 2, 2, 2, 16))
    noise = jax.random.normal(k2, (NUM_TIMES - 1, 2, 2, 2, 2, 16))
    gains = optogenetic_gains(0.0)
    left = run_euler(theta, x0, noise, input_schedule("left"), gains, record=False)
    right = run_euler(theta, jnp.flip(x0, 0), jnp.flip(noise, 1), input_schedule("right"), gains, record=False)
    np.testing.assert_allclose(right, jnp.flip(left, 0), atol=1e-6)


def test_accuracies_are_probabilities_and_gradients_are_finite(accuracy):
    assert accuracy.shape == (3, 2) and np.all((accuracy >= 0) & (accuracy <= 1))
    small = SCProAnti(trials=20)
    grad = jax.grad(lambda z: small.accuracy(jax.random.key(6), z).sum())(THETA)
    assert np.all(np.isfinite(grad)) and np.any(np.abs(grad) > 0)


def test_behaviour_across_connectivities(accuracy):
    """Found by exploring the box (reported with the model): most z leave the choice at chance; a
    mutually inhibiting Pro/Anti pair (vW, hW < 0) with Pro-favouring modes balances both rules at
    about 75 %; a circuit that ignores the rule answers Pro on every trial."""
    balanced, pro_only, unconnected = accuracy
    assert np.all((balanced > 0.65) & (balanced < 0.85)), balanced
    assert pro_only[0] > 0.95 and pro_only[1] < 0.05, pro_only
    np.testing.assert_allclose(unconnected, 0.5, atol=0.05)  # no recurrence: the light is forgotten by t = 1.8 s


def test_optogenetic_silencing_zeroes_the_delay(run_euler):
    theta = jnp.asarray([BALANCED], jnp.float32)
    x0 = jnp.full((2, 2, 1, 2, 1), 0.1)
    xs = run_euler(theta, x0, jnp.zeros((NUM_TIMES - 1, *x0.shape)), input_schedule(), optogenetic_gains(1.0),
                   record=True)
    assert np.all(xs[34:50] == 0) and np.all(xs[50] > 0)


def test_bad_input_is_refused_with_the_fix(model):
    with pytest.raises(ValueError, match=r"\[batch, 4\].*reshape a single parameter"):
        model.accuracy(jax.random.key(0), jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[batch, 4\]"):
        model.simulate(jax.random.key(0), jnp.zeros(4))
    with pytest.raises(ValueError, match="trials must be an integer >= 1"):
        SCProAnti(trials=0)
    with pytest.raises(ValueError, match=r"optogenetic_gamma must be in \[0, 1\]"):
        SCProAnti(optogenetic_gamma=1.5)
    with pytest.raises(ValueError, match="stimulus must be"):
        input_schedule("up")


def test_common_noise_shares_trials_across_rows_and_keeps_the_accuracy(model):
    """Common random numbers (the property's statistics): equal rows give equal accuracies, and the
    accuracy estimate agrees with independent noise."""
    theta = jnp.tile(jnp.asarray([BALANCED], jnp.float32), (3, 1))
    shared = np.asarray(model.accuracy(jax.random.key(1), theta, common_noise=True))
    np.testing.assert_allclose(shared, np.tile(shared[:1], (3, 1)), atol=1e-6)
    a = np.mean([np.asarray(model.common_noise_accuracy(jax.random.key(10 + i), theta[:1])) for i in range(8)], 0)
    b = np.asarray(model.accuracy(jax.random.key(2), jnp.tile(theta[:1], (8, 1)))).mean(0)
    np.testing.assert_allclose(a[0], b, atol=0.05)  # 8 x 200 trials each: sd of the difference ~0.02
    with pytest.raises(ValueError, match="one key"):
        model.accuracy(jax.random.split(jax.random.key(0), 3), theta, common_noise=True)
