"""Reconstruction of a hidden variable by delay embedding and local linear regression (issue 7, scope 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.dynamics import DelayRegressor
from neurosbi.models.montbrio import Montbrio

T = np.arange(2000) * 0.01


def _oscillator(omega, amplitude, phase):
    return amplitude * np.sin(omega * T + phase), amplitude * np.cos(omega * T + phase)


def test_the_hidden_phase_of_an_oscillator_is_recovered_exactly():
    """x = a sin(ωt + φ), y = a cos(ωt + φ): y(t) = [x(t + τ) − x(t − τ)] / (2 sin ωτ) is linear in the
    embedding whatever a and φ, so local linear regression on a bank of one ω is exact."""
    rng = np.random.default_rng(0)
    bank = [_oscillator(2.0, rng.uniform(0.5, 2), rng.uniform(0, 6)) for _ in range(5)]
    regressor = DelayRegressor([b[0] for b in bank], [b[1] for b in bank], delay=5, dimension=4)
    x, y = _oscillator(2.0, 1.3, 0.4)
    rec = regressor.reconstruct(x)
    assert rec.covered == slice(10, 2000 - 5) and np.isnan(rec.values[:10]).all() and np.isnan(rec.values[-5:]).all()
    assert rec.rmse(y) < 1e-9
    assert regressor.neighbours == 30  # (d + 1)(d + 2)


@pytest.fixture(scope="module")
def mpr_bank():
    """A small MPR bank (20 series, 100 s, sampled every 10 ms) and one more series to reconstruct."""
    theta = np.random.default_rng(0).uniform((0.2, -10, 10), (2, -3, 20), (21, 3))
    theta[-1] = (0.7, -4.6, 14.5)
    with jax.enable_x64(True):
        traces = Montbrio(noise_sigma=0.1, noise="gaussian", dtype="float64").simulate(jax.random.key(1), jnp.asarray(theta))
    return np.asarray(traces)[:, :, ::10]


def test_mpr_rate_from_v_beats_the_naive_baselines(mpr_bank):
    """On a bank of 20 simulations the embedding's r beats the bank's mean r and the best global linear map
    from the instantaneous v (both fitted on the same bank) by a wide margin; smoothing helps further."""
    bank, (v, r) = mpr_bank[:-1], mpr_bank[-1]
    rec = DelayRegressor(bank[:, 0], bank[:, 1], delay=16, dimension=12).reconstruct(v, smooth_window=31)
    covered = rec.covered
    mean_only = np.sqrt(np.mean((bank[:, 1].mean() - r[covered]) ** 2))
    slope, intercept = np.polyfit(bank[:, 0].ravel(), bank[:, 1].ravel(), 1)
    linear = np.sqrt(np.mean((slope * v[covered] + intercept - r[covered]) ** 2))
    assert rec.rmse(r) < 0.6 * min(mean_only, linear), (rec.rmse(r), mean_only, linear)
    assert rec.rmse(r) <= rec.rmse(r, raw=True)


def test_bad_input_is_refused():
    x, y = _oscillator(2.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        DelayRegressor(x[None], y[None, :-1], delay=5, dimension=4)
    with pytest.raises(ValueError, match="NaN"):
        DelayRegressor(np.where(T > 3, np.nan, x)[None], y[None], delay=5, dimension=4)
    with pytest.raises(ValueError, match="neighbours must be between"):
        DelayRegressor(x[None, :40], y[None, :40], delay=5, dimension=4)
    with pytest.raises(ValueError, match="odd"):
        DelayRegressor(x[None], y[None], delay=5, dimension=4).reconstruct(x, smooth_window=30)
