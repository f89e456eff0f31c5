"""The STG hub circuit of EPI: shapes, the soft-argmax frequency on sinusoids, one Euler step against a
hand computation in SI units, the fast/slow switch of the hub over the parameter box, gradients, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.models._base import EmergentProperty
from neurosbi.models.stg_hub import HUB, X0, STGHub, euler_step, soft_argmax_frequency

# rows: the paper's example; weak g_synA at low / mid / high g_el; strong g_synA likewise; g_synA = 2.5 nS
# at g_el = 5 and 8 (robust to the noise: away from the regime border, where trials differ by ~0.2 Hz)
POINTS = np.array([[4.5, 3.0], [4.0, 0.01], [6.0, 0.01], [8.0, 0.01], [4.0, 4.0], [6.0, 4.0], [8.0, 4.0],
                   [5.0, 2.5], [8.0, 2.5]], np.float32)
WEAK, STRONG, SWITCH = slice(1, 4), slice(4, 7), slice(7, 9)


@pytest.fixture(scope="module")
def model():
    return STGHub()


@pytest.fixture(scope="module")
def runs(model):
    """Traces and the frequencies of all five neurons at ``POINTS``, one compiled call."""
    traces, freqs = jax.jit(lambda k, z: (lambda x: (x, model.frequencies(x)))(model.simulate(k, z)))(
        jax.random.key(0), jnp.asarray(POINTS))
    return np.asarray(traces), np.asarray(freqs)


def test_shapes_and_contract(model, runs):
    traces, freqs = runs
    assert traces.shape == (len(POINTS), 5, 301) == (len(POINTS), *model.trace_shape)
    assert freqs.shape == (len(POINTS), 5)
    np.testing.assert_allclose(model.features(jnp.asarray(traces)), freqs[:, [0, HUB, 3]], atol=1e-6)
    assert model.param_names == ("g_el", "g_synA") and model.param_units == ("nS", "nS")
    z = np.asarray(model.prior.sample(jax.random.key(1), (500,)))
    assert np.all(z.min(0) >= [4.0, 0.01]) and np.all(z.max(0) <= [8.0, 4.0])
    np.testing.assert_allclose(traces[:, :, 0], np.tile(X0[:5], (len(POINTS), 1)), rtol=1e-6)
    assert model.config() == {"noise_std": 1e-3, "beta_psi": 100.0, "num_steps": 300, "substeps": 1}
    assert model.epi_defaults["batch_size"] == 400 and model.epi_defaults["c0"] == 1e5


def test_soft_argmax_recovers_a_sinusoids_frequency():
    t = np.arange(301) * 0.025  # s
    freqs, phases = np.array([0.3, 0.6]), np.array([0.0, 1.0, 2.0])
    v = 50 * np.sin(2 * np.pi * freqs[:, None, None] * t + phases[None, :, None]) - 20  # mV, [2, 3, 301]
    omega = np.asarray(jax.jit(soft_argmax_frequency)(jnp.asarray(v, jnp.float32)))
    np.testing.assert_allclose(omega[:, 0], freqs, atol=0.01)
    np.testing.assert_allclose(omega.mean(1), freqs, atol=0.01)
    np.testing.assert_allclose(omega, np.broadcast_to(freqs[:, None], omega.shape), atol=0.015)  # any phase


def _euler_step_si(x0, g_el, g_syn_a):
    """One Euler step of 25 ms written independently, in volts, siemens, farads and seconds."""
    v, n, h = x0[:5] * 1e-3, x0[5:10], x0[10:]
    g_ca = 1e-6 * np.array([1.9e-2, 1.9e-2, 1.7e-2, 8.5e-3, 8.5e-3])
    g_k = 1e-6 * np.array([3.9e-2, 3.9e-2, 1.9e-2, 1.5e-2, 1.5e-2])
    g_h = 1e-6 * np.array([2.5e-2, 2.5e-2, 8.0e-3, 1.0e-2, 1.0e-2])
    g_el, g_syn_a, g_syn_b = 1e-9 * g_el, 1e-9 * g_syn_a, 5e-9
    m_inf = 0.5 * (1 + np.tanh(v / 0.020))
    n_inf = 0.5 * (1 + np.tanh(v / 0.015))
    h_inf = 1 / (1 + np.exp((v + 0.0783) / 0.0105))
    s = 1 / (1 + np.exp((-0.025 - v) / 0.005))
    f1, f2, hub, s1, s2 = v
    i_elec = g_el * np.array([0.0, f2 - hub, (hub - f2) + (hub - s2), 0.0, s2 - hub])
    i_syn = np.array([g_syn_b * s[1] * (f1 + 0.075), g_syn_b * s[0] * (f2 + 0.075),
                      g_syn_a * (s[0] + s[3]) * (hub + 0.075), g_syn_b * s[4] * (s1 + 0.075),
                      g_syn_b * s[3] * (s2 + 0.075)])
    current = (1e-10 * (v + 0.040) + g_ca * m_inf * (v - 0.100) + g_k * n * (v + 0.080)
               + g_h * h * (v + 0.020) + i_elec + i_syn)
    lambda_n = 2.0 * np.cosh(v / 0.030)
    tau_h = (272 + 1499 / (1 + np.exp((-0.0422 - v) / 0.0873))) / 1000
    dt = 0.025
    return np.concatenate([1e3 * (v - dt * current / 1e-9), n + dt * lambda_n * (n_inf - n),
                           h + dt * (h_inf - h) / tau_h])


def test_one_euler_step_from_x0_matches_a_hand_computation(model):
    expected = _euler_step_si(X0.astype(np.float64), 4.5, 3.0)
    got = np.asarray(euler_step(jnp.asarray(X0, jnp.float32), 4.5, 3.0, jnp.zeros(5)))
    np.testing.assert_allclose(got[:5], expected[:5], atol=1e-4)  # mV
    np.testing.assert_allclose(got[5:], expected[5:], atol=1e-6)
    assert np.abs(got[:5] - X0[:5]).max() > 1.0  # the step moves V by mV, so the check has teeth
    # the current noise enters as dt / C · σ ξ: 1 nA for 25 ms on 1 nF is 25 mV
    kick = np.asarray(euler_step(jnp.asarray(X0, jnp.float32), 4.5, 3.0, jnp.ones(5))) - got
    np.testing.assert_allclose(kick, np.r_[np.full(5, 25.0), np.zeros(10)], atol=1e-4)


def test_example_simulation_runs_with_a_finite_hub_frequency(runs):
    traces, freqs = runs
    assert np.isfinite(traces).all() and -90 < traces.min() and traces.max() < 70  # mV
    # f1 fast, the hub slow (Fig. 1B); over 40 noise seeds f1 >= 0.68 Hz and the hub in [0.35, 0.43] Hz
    assert freqs[0, 0] > 0.6 and 0.3 < freqs[0, HUB] < 0.5


def test_hub_switches_between_the_fast_and_the_slow_rhythm(runs):
    _, freqs = runs
    hub, f1, s1 = freqs[:, HUB], freqs[:, 0], freqs[:, 3]
    # weak synapses onto the hub: it follows the fast oscillator, whatever g_el
    assert np.all(hub[WEAK] > 0.6) and np.all(np.abs(hub[WEAK] - f1[WEAK]) < 0.05)
    # strong synapses: it follows the slow oscillator
    assert np.all(hub[STRONG] < 0.45) and np.all(np.abs(hub[STRONG] - s1[STRONG]) < 0.05)
    # at g_synA = 2.5 nS, raising g_el from 5 to 8 nS switches the hub from fast to slow
    assert hub[SWITCH][0] > 0.6 and hub[SWITCH][1] < 0.45


def test_emergent_property_and_its_gradient_are_finite(model):
    prop = model.emergent_property()
    assert isinstance(prop, EmergentProperty) and prop.name == "hub-0.55Hz" and prop.names == ("omega_hub",)
    assert prop.mean == (0.55,) and prop.variance == (0.025**2,) and prop.simulations_per_z == 1
    z = jnp.asarray([[5.5, 1.5], [6.5, 2.0], [4.5, 3.0]])
    value, grad = jax.jit(jax.value_and_grad(lambda z: prop.constraint_statistics(jax.random.key(2), z).sum()))(z)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    assert np.abs(np.asarray(grad)).max() > 0


def test_bad_inputs_raise_clear_errors(model):
    with pytest.raises(ValueError, match="noise_std"):
        STGHub(noise_std=-1.0)
    with pytest.raises(ValueError, match="beta_psi"):
        STGHub(beta_psi=0.0)
    with pytest.raises(ValueError, match="num_steps must be an integer >= 41"):
        STGHub(num_steps=30)
    with pytest.raises(ValueError, match="substeps"):
        STGHub(substeps=0)
    with pytest.raises(ValueError, match=r"reshape a single parameter to \[1, 2\]"):
        model.simulate(jax.random.key(0), jnp.array([4.5, 3.0]))
    with pytest.raises(ValueError, match="hub-0.55Hz"):
        model.emergent_property("hub-1Hz")
    with pytest.raises(ValueError, match=r"\[batch, channels, time\]"):
        model.frequencies(jnp.zeros((5, 301)))
    with pytest.raises(ValueError, match="outside the prior"):
        model.check_theta([[9.0, 1.0]])
