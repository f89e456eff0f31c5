"""The QIF network: its step against a plain numpy loop, its rate and mean potential against the MPR
mean field for a large population, its heterogeneity options and its input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.models import QIFNetwork, get
from neurosbi.models.qif_network import lorentzian_quantiles

TRUTH = np.array([0.7, -4.6, 14.5])


def _network_numpy(theta, n, duration, t_on, t_off, dt=1e-4, record=10, vp=100.0, amplitude=3.0):
    """The network of the module docstring, one neuron array and one Python loop over steps."""
    delta, eta_bar, coupling = theta
    i = np.arange(1, n + 1)
    eta = (eta_bar + delta * np.tan(0.5 * np.pi * (2 * i - n - 1) / (n + 1))).astype(np.float32)
    v = np.full(n, -3.0, np.float32)
    left = np.zeros(n, np.int64)
    hold, lag = int(round(2 / vp / dt)), 10
    pending = [0.0] * lag  # spikes emitted in the last ``lag`` steps, oldest first
    s = 0.0
    mean_v, counts = [-3.0], [0.0, 0.0]  # the first sample is the initial state
    steps = int(round(duration / dt))
    for k in range(steps - record):
        drive = amplitude if round(t_on / dt) <= (k // record) * record < round(t_off / dt) else 0.0
        active = left <= 0
        moved = v + np.float32(dt) * (v * v + eta + np.float32(drive) + np.float32(coupling * s))
        fired = active & (moved >= vp)
        v = np.where(fired, -vp, np.where(active, moved, v)).astype(np.float32)
        left = np.where(fired, hold, left - 1)
        count = float(np.sum(left == hold // 2))
        decay = np.exp(-dt / 1e-3)
        s = s * decay + pending.pop(0) * (1 - decay) / (n * dt)  # one spike: charge 1/N
        pending.append(count)
        counts[-1] += count
        if (k + 1) % record == 0:
            active = left <= 0
            mean_v.append(v[active].mean() if active.any() else 0.0)
            counts.append(0.0)
    return np.asarray(mean_v), np.asarray(counts[:-1]) / (n * dt * record)


def test_network_step_matches_numpy_loop():
    net = QIFNetwork(n_neurons=64, duration=0.3, t_on=0.1, t_off=0.2, rate_window=1e-3)
    theta = np.array([20.0, 400.0, 10.0])  # strongly driven: most neurons fire several times in 0.3 s
    got = np.asarray(jax.jit(net.simulate)(jax.random.key(0), jnp.asarray(theta[None], jnp.float32)))[0]
    mean_v, rate = _network_numpy(theta, 64, 0.3, 0.1, 0.2)
    assert got.shape == (2, 300)
    assert rate.sum() > 0  # the check exercises spikes and the synapse
    np.testing.assert_allclose(got[0], mean_v, rtol=1e-3, atol=1e-3)
    # float32 rounding may move a threshold crossing by one step, hence a spike into the next bin:
    # the spike counts agree to within one spike at every time
    spikes_got, spikes_want = np.cumsum(got[1]) * 64 * 1e-3, np.cumsum(rate) * 64 * 1e-3
    assert np.max(np.abs(spikes_got - spikes_want)) <= 1.01
    assert spikes_want[-1] > 100


@pytest.fixture(scope="module")
def large_network_run():
    """10^4 neurons, 20 s (stimulus on [8, 14)), and the deterministic mean field on the same protocol."""
    net = QIFNetwork(duration=20.0, t_on=8.0, t_off=14.0)
    theta = jnp.asarray(TRUTH[None], jnp.float32)
    micro = np.asarray(jax.jit(net.simulate)(jax.random.key(0), theta))[0]
    macro = np.asarray(jax.jit(net.mean_field().simulate)(jax.random.key(0), theta))[0]
    return net, micro, macro


def test_large_network_rate_matches_mean_field(large_network_run):
    """Montbrió et al. 2015: for large N the network's rate and mean potential follow the MPR equations.
    Measured at N = 10^4 (benchmarks/qif_network.py, 100 s): rest rate 0.055 vs 0.057, up state
    1.322 vs 1.316, rate correlation over the stimulus window 0.95."""
    net, micro, macro = large_network_run
    assert micro.shape == macro.shape == net.trace_shape
    rest, stim = slice(5000, 8000), slice(10000, 14000)  # the low state settles in about 4 s
    assert abs(micro[1, rest].mean() / macro[1, rest].mean() - 1) < 0.10
    assert abs(micro[0, rest].mean() - macro[0, rest].mean()) < 0.05
    assert abs(micro[1, stim].mean() / macro[1, stim].mean() - 1) < 0.05
    # the stimulus switches the network to the high-activity focus, as it does the mean field
    assert micro[1, stim].mean() > 10 * micro[1, rest].mean()
    # and it oscillates with it after onset (the damped oscillation of the focus)
    onset = slice(8000, 14000)
    assert np.corrcoef(micro[1, onset], macro[1, onset])[0, 1] > 0.8


def test_network_features_are_mean_field_features(large_network_run):
    net, micro, macro = large_network_run
    got = np.asarray(net.features(jnp.asarray(micro[None])))[0]
    assert got.shape == (len(net.feature_names),) == (34,)
    assert net.feature_names == net.mean_field().feature_names
    assert np.all(np.isfinite(got))


def test_heterogeneity_options(key):
    quantiles = np.asarray(lorentzian_quantiles(1001, -4.6, 0.7))
    assert quantiles[500] == pytest.approx(-4.6, abs=1e-5)  # the median is the centre
    assert np.quantile(quantiles, 0.75) - np.quantile(quantiles, 0.5) == pytest.approx(0.7, rel=0.02)
    net = QIFNetwork(n_neurons=500, heterogeneity="random", duration=0.5, t_on=0.1, t_off=0.3)
    theta = jnp.asarray(np.array([[2.0, -3.0, 5.0]] * 2), jnp.float32)
    random = np.asarray(net.simulate(jax.random.split(key, 2), theta))
    assert not np.allclose(random[0, 0], random[1, 0])  # each network its own draw of η_i
    fixed = np.asarray(QIFNetwork(n_neurons=500, duration=0.5, t_on=0.1, t_off=0.3).simulate(
        jax.random.split(key, 2), theta))
    np.testing.assert_array_equal(fixed[0], fixed[1])  # quantiles: no randomness at all


def test_registry_and_bad_configuration():
    assert get("qif-network", n_neurons=100).n_neurons == 100
    with pytest.raises(ValueError, match="heterogeneity"):
        QIFNetwork(heterogeneity="gaussian")
    with pytest.raises(ValueError, match="record_step .* multiple of time_step"):
        QIFNetwork(record_step=1.5e-4)
    with pytest.raises(ValueError, match="n_neurons"):
        QIFNetwork(n_neurons=1)
