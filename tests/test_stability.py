"""MPR linear stability against the quartic and the vector field (issue 7, scope 5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.dynamics import stability
from neurosbi.models.montbrio import mean_field


@pytest.mark.parametrize("params", [(0.7, -4.6, 14.5, 0.0), (0.7, -4.6, 14.5, 3.0), (1.0, -5.0, 15.0, 0.0),
                                    (2.0, -3.5, 6.0, 0.0)])
def test_fixed_points_are_roots_of_the_field_and_the_quartic(params):
    delta, eta, J, current = params
    points = stability.mpr_fixed_points(delta, eta, J, current)
    assert points
    with jax.enable_x64(True):
        for p in points:
            dv, dr = mean_field(jnp.float64(p.v), jnp.float64(p.r), delta, eta, J, current)
            assert abs(float(dv)) < 1e-9 and abs(float(dr)) < 1e-9
            quartic = p.v**4 + (eta + current) * p.v**2 - J * delta / (2 * np.pi) * p.v - delta**2 / 4
            assert abs(quartic) < 1e-10
            jac = jax.jacfwd(lambda s: jnp.stack(mean_field(s[0], s[1], delta, eta, J, current)))(
                jnp.array([p.v, p.r]))
            np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(np.asarray(jac))),
                                       np.sort_complex(p.eigenvalues), atol=1e-9)


def test_the_published_truth_is_bistable_and_the_stimulus_leaves_one_focus():
    points = stability.mpr_fixed_points(0.7, -4.6, 14.5)
    assert [p.kind for p in points] == ["stable node", "saddle", "stable focus"]
    assert stability.mpr_regime(0.7, -4.6, 14.5) == stability.REGIMES.index("bistable")
    # with I0 = 3 during the stimulus only the high-activity focus remains
    assert [p.kind for p in stability.mpr_fixed_points(0.7, -4.6, 14.5, 3.0)] == ["stable focus"]


def test_phase_diagram_depends_on_scaled_parameters_only():
    eta_d, J_sd = np.linspace(-10, -1, 12), np.linspace(5, 25, 11)
    grid = stability.mpr_phase_diagram(eta_d, J_sd)
    eta, J = np.meshgrid(eta_d, J_sd)
    for delta in (0.3, 2.5):
        np.testing.assert_array_equal(stability.mpr_regime(delta, eta * delta, J * np.sqrt(delta)), grid)
    assert {0, 1, 2} <= set(np.unique(grid))  # node, focus and the bistable wedge all appear


def test_bad_delta_is_refused():
    with pytest.raises(ValueError, match="delta must be > 0"):
        stability.mpr_fixed_points(0.0, -4.6, 14.5)
