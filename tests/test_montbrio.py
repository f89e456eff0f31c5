"""The MPR model: dynamics against a plain Euler loop, fused features against the reference path,
noise schemes against each other, its description and its input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import PriorSupportError, ShapeError
from neurosbi.models import Montbrio, get

TRUTH = np.array([0.7, -4.6, 14.5])


def _euler_numpy(theta, duration, dt=0.001, t_on=1.0, t_off=2.0, amplitude=3.0):
    """The published deterministic recursion in float64 (reference section 2.1)."""
    delta, eta, J = theta
    n = int(round(duration / dt))
    on, off = int(t_on / dt), int(t_on / dt) + int((t_off - t_on) / dt)
    v, r = np.empty(n), np.empty(n)
    v[0], r[0] = -3.0, 0.5
    for i in range(1, n):
        current = amplitude if on <= i - 1 < off else 0.0
        dr = delta / np.pi + 2 * r[i - 1] * v[i - 1]
        dv = v[i - 1] ** 2 - (np.pi * r[i - 1]) ** 2 + J * r[i - 1] + eta + current
        v[i], r[i] = v[i - 1] + dt * dv, r[i - 1] + dt * dr
    return np.stack([v, r])


def test_deterministic_dynamics_match_published_recursion():
    model = Montbrio(duration=4.0, t_on=1.0, t_off=2.0, noise_sigma=0.0)
    got = np.asarray(jax.jit(model.simulate)(jax.random.key(0), jnp.asarray(TRUTH[None], jnp.float32)))[0]
    want = _euler_numpy(TRUTH, 4.0)
    assert got.shape == (2, 4000)
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_fused_features_equal_reference_path(short_montbrio, key):
    theta = short_montbrio.prior.sample(jax.random.key(3), (64,)).at[0].set(jnp.asarray(TRUTH, jnp.float32))
    ref = np.asarray(jax.jit(lambda k, t: short_montbrio.features(short_montbrio.simulate(k, t)))(key, theta))
    fused = np.asarray(jax.jit(short_montbrio.simulate_features)(key, theta))
    ok = np.isfinite(ref).all(1)
    np.testing.assert_array_equal(ok, np.isfinite(fused).all(1))
    np.testing.assert_allclose(fused[ok], ref[ok], rtol=1e-5, atol=1e-5)


def test_autocorrelation_features_fused_and_reference_agree(key):
    """Extra autocorrelation features: named after the published 17, same value on both paths."""
    model = Montbrio(duration=4.0, t_on=1.0, t_off=2.0, observe="v", autocorr_lags=(0.05, 0.2))
    assert model.feature_names[17:] == ("v_acf2_rest", "v_acf8_rest", "v_acf2_stim", "v_acf8_stim",
                                        "v_acf2_post", "v_acf8_post")
    theta = jnp.asarray(np.stack([TRUTH, [2.0, -6.0, 10.0]]), jnp.float32)
    fused = np.asarray(jax.jit(model.simulate_features)(key, theta))
    ref = np.asarray(jax.jit(lambda k, t: model.features(model.simulate(k, t)))(key, theta))
    np.testing.assert_allclose(fused, ref, rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(fused[:, 17:]) <= 1) and np.all(fused[:, 17::2] > fused[:, 18::2])  # decays with lag
    with pytest.raises(ValueError, match="autocorr_lags must be a tuple"):
        Montbrio(autocorr_lags=[0.1])


def test_feature_stride_one_is_the_published_summary(key):
    """``feature_stride=1`` computes the published features on every 1 ms sample."""
    from test_features import _published_summary

    model = Montbrio(duration=4.0, t_on=1.0, t_off=2.0, feature_stride=1)
    theta = jnp.asarray(TRUTH[None], jnp.float32)
    traces = np.asarray(jax.jit(model.simulate)(key, theta))[0]
    got = np.asarray(jax.jit(model.simulate_features)(key, theta))[0]
    want = np.concatenate([_published_summary(tr.astype(np.float64), 0.001, 1.0, 2.0) for tr in traces])
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


def test_two_point_and_gaussian_noise_agree_in_distribution():
    """Weak-order-1 two-point increments and Gaussian Euler-Maruyama give the same feature law.

    Compared at the published truth over 256 simulations each: every feature's mean differs by less
    than 4 standard errors (a classifier two-sample test on 10k each is in benchmarks/).
    """
    theta = jnp.tile(jnp.asarray(TRUTH[None], jnp.float32), (256, 1))
    feats = {}
    for noise in ("two-point", "gaussian"):
        model = Montbrio(duration=4.0, t_on=1.0, t_off=2.0, noise=noise, noise_sigma=0.3)
        feats[noise] = np.asarray(jax.jit(model.simulate_features)(jax.random.key(11), theta))
    a, b = feats["two-point"], feats["gaussian"]
    se = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b)) + 1e-6
    assert np.all(np.abs(a.mean(0) - b.mean(0)) / se < 4.5)


def test_description_and_options():
    m = get("montbrio")
    assert m.param_names == ("delta", "eta", "J")
    assert len(m.feature_names) == 34
    np.testing.assert_allclose(m.default_truth, TRUTH)
    low, high = np.asarray(m.prior.minval), np.asarray(m.prior.maxval)
    np.testing.assert_allclose(low, [0.1, -10, 5])
    np.testing.assert_allclose(high, [5, -3, 20])
    assert len(get("montbrio", observe="v").feature_names) == 17
    assert len(get("montbrio", observe="v", autocorr_lags=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6)).feature_names) == 35
    m4 = get("montbrio", infer_sigma=True)
    assert m4.param_names == ("delta", "eta", "J", "sigma") and m4.default_truth[3] == pytest.approx(0.1)
    assert get("montbrio", infer_input=True).param_names[-1] == "I0"
    assert get("montbrio", stimulus="sine", infer_input=True).param_names[-1] == "omega"
    with pytest.raises(ValueError, match="observe must be"):
        get("montbrio", observe="rx")


def test_sigma_and_input_as_parameters_change_the_output(key):
    m = Montbrio(duration=4.0, t_on=1.0, t_off=2.0, infer_sigma=True, infer_input=True)
    theta = jnp.asarray([[0.7, -4.6, 14.5, 0.0, 3.0], [0.7, -4.6, 14.5, 0.0, 0.0]], jnp.float32)
    tr = np.asarray(jax.jit(m.simulate)(key, theta))
    assert not np.allclose(tr[0], tr[1])  # the step current I0 is read from theta
    det = Montbrio(duration=4.0, t_on=1.0, t_off=2.0, noise_sigma=0.0)
    np.testing.assert_allclose(tr[0], np.asarray(jax.jit(det.simulate)(key, theta[:1, :3]))[0], atol=1e-5)


def test_bad_parameters_are_refused_with_a_clear_message():
    m = get("montbrio")
    with pytest.raises(ShapeError, match="montbrio expects 3: delta, eta, J"):
        m.check_theta(np.zeros((2, 4)))
    with pytest.raises(PriorSupportError, match=r"eta = -1.*\[-10, -3\]"):
        m.check_theta([0.7, -1.0, 14.5])
