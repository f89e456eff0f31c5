"""C2ST against its analytic accuracy, and its input checks."""

import jax
import numpy as np
import pytest
from scipy.stats import norm

from neurosbi import ShapeError
from neurosbi.diagnostics import c2st


@pytest.mark.parametrize("shift", [0.0, 1.0, 3.0])
def test_c2st_reaches_the_bayes_accuracy_of_two_gaussians(shift):
    """N(0, 1) against N(shift, 1) in the first of two dimensions: the best accuracy is Φ(shift / 2)."""
    rng = np.random.default_rng(0)
    n = 3000
    a = rng.standard_normal((n, 2))
    b = rng.standard_normal((n, 2)) + [shift, 0.0]
    got = c2st(a, b, jax.random.key(1), epochs=30)
    assert got == pytest.approx(norm.cdf(shift / 2), abs=0.03)


def test_c2st_refuses_bad_input():
    with pytest.raises(ShapeError, match="equal d"):
        c2st(np.zeros((20, 2)), np.zeros((20, 3)), jax.random.key(0))
    with pytest.raises(ValueError, match="NaN"):
        c2st(np.full((20, 2), np.nan), np.zeros((20, 2)), jax.random.key(0))


def test_closeness_simulates_in_full_even_for_a_screening_model():
    from _toys import ScreenedToy
    from neurosbi.diagnostics import closeness

    theta = np.array([[-0.5, 0.2], [0.5, -0.2]], np.float32)  # the first would be screened out
    res = closeness(ScreenedToy(), theta, np.zeros(2), jax.random.key(0), scale=np.ones(2), within=3.0)
    assert res["valid"].all() and res["close"].all()
