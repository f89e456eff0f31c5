"""Spectral submanifolds on systems whose SSM, reduced dynamics and normal form are known in closed form
(reference notes ssm.md §2.2): the planar slow SSM (T1), the oscillatory 2-D SSM in 3-D (T2), a
Stuart–Landau master with a slaved coordinate (T3), the Duffing backbone (T4), delay embedding of a linear
system (T5); the polynomial algebra; and the errors a user can run into."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.dynamics import (
    PolynomialBasis,
    central_difference_weights,
    delay_embed,
    embedding_copies,
    time_derivative,
)
from neurosbi.dynamics.ssm import (
    ResonanceError,
    backbone,
    fit_ssm,
    normal_form,
    polynomial_basis,
    ssm_from_vector_field,
    taylor_coefficients,
)

MU = np.sqrt(24.0)
T1_COEFFS = np.array([0.344949, 0.526599, 1.112372, -9.898979])  # 1/(√24 − k), k = 2..5 (SSMTool's benchmark)


def t1_field(mu=MU):
    def f(u):
        x, y = u
        return jnp.stack([-x, -mu * y + x**2 + x**3 + x**4 + x**5])
    return f


def t1_trajectories():
    """Exact trajectories on the slow SSM y = Σ x^k / (μ − k): x = x0 e^{−t}."""
    h = lambda x: sum(x**k / (MU - k) for k in range(2, 6))  # noqa: E731
    t = np.linspace(0, 6, 601)
    return [(t, np.stack([x0 * np.exp(-t), h(x0 * np.exp(-t))], 1)) for x0 in (0.4, -0.35, 0.25)]


# Stuart–Landau master (x, y) with a slaved w = g(x, y) (T3): exact backbones α + βA², ω + γA²
AL, OM, BE, GA, B = -0.1, 1.0, -0.3, 0.5, 2.0


def slave(x, y):
    return 0.5 * x**2 - x * y + 0.3 * y**3


def t3_trajectory(r0, th0, t):
    u0 = r0**2
    growth = AL + BE * u0 * (1 - np.exp(2 * AL * t))
    rho = np.sqrt(AL * u0 * np.exp(2 * AL * t) / growth)
    th = th0 + OM * t - GA / (2 * BE) * np.log(growth / AL)
    x, y = rho * np.cos(th), rho * np.sin(th)
    return np.stack([x, y, slave(x, y)], 1)


def t3_field(u):
    x, y, w = u
    r2 = x * x + y * y
    fx = AL * x - OM * y + (BE * x - GA * y) * r2
    fy = OM * x + AL * y + (GA * x + BE * y) * r2
    gx, gy = x - y, -x + 0.9 * y**2  # ∇g
    return jnp.stack([fx, fy, -B * (w - slave(x, y)) + gx * fx + gy * fy])


# ---------------------------------------------------------------------------------------------- algebra
def test_polynomial_algebra_products_compositions_and_derivatives():
    basis = PolynomialBasis(2, 4)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=basis.size), rng.normal(size=basis.size)
    a[basis.up_to(4, start=3)] = 0  # degree <= 2 each: the product is exact in degree 4
    b[basis.up_to(4, start=3)] = 0
    x = rng.normal(size=(7, 2))
    ev = lambda c: basis(c[None], x)[:, 0]  # noqa: E731
    assert np.allclose(ev(basis.multiply(a, b)), ev(a) * ev(b))
    # d/dx1 of x1^3 x2 = 3 x1^2 x2
    c = np.zeros(basis.size)
    c[basis.index[(3, 1)]] = 1.0
    dc = basis.derivative(c, 0)
    assert dc[basis.index[(2, 1)]] == 3.0 and np.count_nonzero(dc) == 1
    # composition with a linear map is exact: p(Mx)
    M = rng.normal(size=(2, 2))
    inner = np.zeros((2, basis.size))
    inner[:, basis.of_degree(1)] = M
    assert np.allclose(basis(basis.compose(a[None], inner, basis), x)[:, 0], basis(a[None], x @ M.T)[:, 0])


def test_taylor_coefficients_of_a_polynomial_are_its_coefficients():
    coeffs, basis = taylor_coefficients(lambda u: jnp.stack([u[0] ** 3 - 2 * u[0] * u[1], jnp.exp(u[1])]), [0.0, 0.0], 3)
    assert coeffs[0, basis.index[(3, 0)]] == pytest.approx(1.0) and coeffs[0, basis.index[(1, 1)]] == pytest.approx(-2)
    assert coeffs[1, basis.index[(0, 3)]] == pytest.approx(1 / 6)  # e^y = 1 + y + y²/2 + y³/6


def test_central_differences_are_exact_on_polynomials_and_drop_the_ends():
    assert np.allclose(central_difference_weights(1), [-0.5, 0.0, 0.5])
    t = np.linspace(0, 1, 50)
    tt, y, dy = time_derivative(t, t**7, accuracy=8)  # order-8 stencil differentiates degree 8 exactly
    assert len(tt) == 50 - 8 and np.allclose(dy[:, 0], 7 * tt**6, atol=1e-9)


# ---------------------------------------------------------------------------------------------- T1, T2
def test_t1_equation_driven_ssm_is_the_closed_form():
    ssm = ssm_from_vector_field(t1_field(), [0.0, 0.0], dim=1, order=5)
    assert np.allclose(ssm.tangent.ravel(), [1, 0])
    assert np.allclose(ssm.graph[1, 2:], T1_COEFFS, atol=1e-6)
    assert np.allclose(ssm.graph[1, 2:], [1 / (MU - k) for k in range(2, 6)], rtol=1e-12)
    assert np.allclose(ssm.field[0, 1:], [-1, 0, 0, 0, 0], atol=1e-12)  # reduced dynamics ẋ = −x
    assert ssm.info["spectral_quotient"] == 4.0


@pytest.mark.parametrize("how", ["tangent", "joint"])
def test_t1_data_driven_ssm_from_trajectories_on_the_ssm(how):
    kw = {"tangent": [[1.0], [0.0]]} if how == "tangent" else {"joint": True}
    ssm = fit_ssm(t1_trajectories(), 1, order=5, field_order=3, **kw)
    assert np.allclose(np.abs(ssm.tangent.ravel()), [1, 0], atol=1e-9)
    assert np.max(np.abs(ssm.graph[1, 2:] - T1_COEFFS)) < 1e-6
    assert ssm.field[0, 1] == pytest.approx(-1.0, abs=1e-9)
    assert np.max(ssm.trajectory_errors(t1_trajectories())) < 1e-8


def test_t1_svd_tangent_alone_is_biased_which_is_why_joint_exists():
    ssm = fit_ssm(t1_trajectories(), 1, order=5, field_order=3)
    assert np.max(np.abs(ssm.graph[1, 2:] - T1_COEFFS)) > 1e-2  # the tilted chart changes the graph
    assert np.max(np.abs(ssm.tangent.T @ ssm.graph)) < 1e-12  # Vᵀ H = 0 exactly, whatever the tangent


def test_t2_oscillatory_ssm_equation_and_data_agree_with_the_closed_form():
    a, w, b = 0.05, 1.0, 1.0
    d = b - 2 * a
    exact = np.array([d * d + 2 * w * w, 2 * w * d, 2 * w * w]) / (d * (d * d + 4 * w * w))  # x², xy, y²

    def f(u):
        x, y, z = u
        return jnp.stack([-a * x - w * y, w * x - a * y, -b * z + x**2])

    eq = ssm_from_vector_field(f, [0.0, 0.0, 0.0], dim=2, order=4)
    basis = polynomial_basis(2, 4)
    assert np.allclose(eq.graph[2, basis.of_degree(2)], exact, atol=1e-12)
    assert np.allclose(eq.graph[2, basis.up_to(4, start=3)], 0, atol=1e-12)
    # trajectories on the SSM: (x, y) a damped rotation, z on the graph; tangent supplied
    t = np.arange(0, 60, 0.02)
    trajs = []
    for r0, th in ((0.2, 0.0), (0.15, 1.0), (0.18, 2.5)):
        x, y = r0 * np.exp(-a * t) * np.cos(w * t + th), r0 * np.exp(-a * t) * np.sin(w * t + th)
        trajs.append((t, np.stack([x, y, exact[0] * x * x + exact[1] * x * y + exact[2] * y * y], 1)))
    data = fit_ssm(trajs, 2, order=2, field_order=1, tangent=np.eye(3)[:, :2])
    assert np.allclose(data.graph[2, polynomial_basis(2, 2).of_degree(2)], exact, atol=1e-6)
    assert np.allclose(data.eigenvalues, [-a + 1j * w, -a - 1j * w], atol=1e-6)
    assert np.max(data.trajectory_errors(trajs)) < 1e-6


# ---------------------------------------------------------------------------------------------- T3, T4
@pytest.fixture(scope="module")
def t3_data_ssm():
    t = np.arange(0, 40, 0.01)
    trajs = [(t, t3_trajectory(r, th, t)) for r, th in ((0.5, 0.0), (0.4, 2.0), (0.45, 4.0))]
    return fit_ssm(trajs, 2, order=3, field_order=3, tangent=np.eye(3)[:, :2]), trajs


def test_t3_stuart_landau_backbones_are_exact_from_data_and_from_equations(t3_data_ssm):
    data, trajs = t3_data_ssm
    assert np.max(data.trajectory_errors(trajs)) < 1e-8
    eq = ssm_from_vector_field(t3_field, [0.0, 0.0, 0.0], dim=2, order=5)
    eta = np.random.default_rng(0).uniform(-0.3, 0.3, (50, 2))
    y = eq.parametrization(eta)
    assert np.max(np.abs(y[:, 2] - slave(y[:, 0], y[:, 1]))) < 1e-12  # w = g(x, y) is the SSM
    for ssm in (data, eq):
        bb = backbone(ssm, np.linspace(0.01, 0.5, 6))
        A = bb["amplitude"]  # max |x| on the orbit = ρ of the Stuart–Landau system
        assert np.max(np.abs(bb["damping"] - (AL + BE * A**2))) < 1e-6
        assert np.max(np.abs(bb["frequency"] - (OM + GA * A**2))) < 1e-6


def test_normal_form_of_a_field_in_normal_form_is_itself(t3_data_ssm):
    nf = normal_form(t3_data_ssm[0])
    kept = nf.coefficients(tol=1e-9)
    assert set(kept) == {"w0: w0", "w0: w0^2 w1", "w1: w1", "w1: w0 w1^2"}
    assert kept["w0: w0"] == pytest.approx(AL + 1j * OM, abs=1e-9)
    # the transformation is linear: nothing to remove
    assert np.allclose(nf.transformation[:, nf.basis.up_to(3, start=2)], 0, atol=1e-9)


def test_duffing_backbone_slope_is_the_lindstedt_formula():
    """About x = 1 of ẍ = x − x³ − 0.1ẋ: ω0 = √2, a2 = 3, a3 = 1; dω/d(A²) = 3a3/(8ω0) − 5a2²/(12ω0³)
    (undamped Lindstedt; −1.0607) and −1.0615 with the damping (reference notes T4)."""
    f = lambda u: jnp.stack([u[1], u[0] - u[0] ** 3 - 0.1 * u[1]])  # noqa: E731
    ssm = ssm_from_vector_field(f, [1.0, 0.0], dim=2, order=3)  # 2-D phase space: the SSM is the plane
    nf = normal_form(ssm)
    gamma = nf.field[0, nf.basis.index[(2, 1)]]
    bb = backbone(ssm, [1e-5, 2e-5], form=nf)  # small: the lifted orbit is the linear one
    slope = np.diff(bb["frequency"])[0] / np.diff(bb["amplitude"] ** 2)[0]
    w0 = np.sqrt(2.0)
    assert slope == pytest.approx(3 / (8 * w0) - 5 * 9 / (12 * w0**3), rel=2e-3)
    assert slope == pytest.approx(-1.0615, abs=1e-4)
    assert np.diff(bb["damping"])[0] / np.diff(bb["amplitude"] ** 2)[0] == pytest.approx(0.0125, abs=3e-4)
    # the published 0.050056 − 4.245885i (modal u = z + z̄) scaled by our unit eigenvectors' |P00|² = 1/3
    assert gamma == pytest.approx((0.050056 - 4.245885j) / 3, abs=1e-6)


def test_normal_form_conjugacy_holds_to_its_order_for_a_mixed_real_and_complex_spectrum():
    """A 3-D field (one real mode, one complex pair: the odd-dimensional case of an HH-like rest state):
    D T(w) N(w) = R(T(w)) in modal coordinates through the truncation degree."""
    rng = np.random.default_rng(1)
    basis = polynomial_basis(3, 4)
    R = rng.normal(scale=0.3, size=(3, basis.size))
    R[:, 0] = 0
    R[:, basis.of_degree(1)] = np.array([[-0.3, -1.0, 0.0], [1.0, -0.3, 0.0], [0.2, 0.0, -0.8]])
    for criterion in ("imaginary", "eigenvalues"):
        nf = normal_form(R, resonance=criterion)
        P, T, N, b = nf.modal, nf.transformation, nf.field, nf.basis
        g = np.linalg.inv(P) @ b.compose(R.astype(complex), P @ T, b)  # R(P T(w)) in modal coordinates
        lhs = b.directional(T, N)
        assert np.max(np.abs(lhs - g)) < 1e-10
    nf = normal_form(R, resonance="eigenvalues")
    assert np.count_nonzero(np.abs(nf.field[:, basis.up_to(4, start=2)]) > 1e-12) == 0  # no exact resonance


# ---------------------------------------------------------------------------------------------- T5
def test_delay_embedding_of_a_linear_system_spans_the_vandermonde_modes():
    lam = -0.1 + 2.0j
    dt, copies, shift = 0.05, 5, 3
    t = np.arange(0, 20, dt)
    trajs = [(t, np.real(c * np.exp(lam * t))) for c in (1.0, 0.5j, 0.8 + 0.3j)]
    emb = delay_embed(trajs, copies, shift_steps=shift)
    assert emb[0][1].shape == (len(t) - (copies - 1) * shift, copies)
    tau = dt * shift
    vander = np.exp(lam * tau * np.arange(copies))
    modes = np.linalg.qr(np.stack([vander.real, vander.imag], 1))[0]
    ssm = fit_ssm(emb, 2, order=1, field_order=1)
    # the SVD tangent space equals the Vandermonde span: principal angles zero
    cosines = np.linalg.svd(modes.T @ ssm.tangent, compute_uv=False)
    assert np.allclose(cosines, 1.0, atol=1e-10)
    assert np.allclose(sorted(ssm.eigenvalues, key=np.imag), [np.conj(lam), lam], atol=1e-6)
    assert embedding_copies(2, 1) == 5 and embedding_copies(2, 2, over_embed=1) == 4


# ---------------------------------------------------------------------------------------------- errors
def test_unstable_fixed_point_is_refused():
    with pytest.raises(ValueError, match="not stable"):
        ssm_from_vector_field(lambda u: jnp.stack([u[0], -u[1]]), [0.0, 0.0], dim=1, order=3)


def test_resonant_spectrum_has_no_smooth_ssm():
    """μ = 2: the invariant curves are y = −x² ln|x| + C x², none of them C²."""
    with pytest.raises(ResonanceError, match="order 2"):
        ssm_from_vector_field(t1_field(mu=2.0), [0.0, 0.0], dim=1, order=3)
    ok = ssm_from_vector_field(t1_field(mu=2.5), [0.0, 0.0], dim=1, order=3)  # non-resonant: fine
    assert ok.graph[1, 2] == pytest.approx(1 / (2.5 - 2))


def test_short_trajectories_and_bad_inputs_get_clear_errors():
    t = np.arange(5) * 0.1
    with pytest.raises(ValueError, match="too short"):
        time_derivative(t, np.sin(t), accuracy=8)
    with pytest.raises(ValueError, match="needs more than"):
        delay_embed([(t, np.sin(t))], copies=4, shift_steps=2)
    with pytest.raises(ValueError, match="delay-embed"):
        fit_ssm([(t, np.sin(t))], 1)
    with pytest.raises(ValueError, match="not a fixed point"):
        ssm_from_vector_field(t1_field(), [0.5, 0.0], dim=1, order=2)
    with pytest.raises(ValueError, match="complex pair"):
        ssm_from_vector_field(t3_field, [0.0, 0.0, 0.0], dim=1, order=2)


# ---------------------------------------------------------------------------------------------- neural systems
def test_neural_systems_have_the_published_spectra():
    import jax

    from neurosbi.dynamics.systems import NEURAL

    def spectrum(system):
        with jax.enable_x64(True):
            jac = np.asarray(jax.jacfwd(system.field)(jnp.asarray(system.fixed_point)))
        lam = np.linalg.eigvals(jac)
        return lam[np.lexsort((lam.imag, lam.real))]

    hh = NEURAL["hh-rest"]()
    assert hh.fixed_point[0] == pytest.approx(-65.0, abs=0.01)
    assert np.allclose(spectrum(hh), [-4.675, -0.2026 - 0.3832j, -0.2026 + 0.3832j, -0.1207], atol=5e-4)
    assert np.allclose(spectrum(NEURAL["mpr-node"]()), [-5.40, -2.45], atol=5e-3)
    assert np.allclose(np.sort(spectrum(NEURAL["rnn-line"]()).real)[-2:], [-1.0, -0.05])


def test_mpr_node_ssm_application_predicts_held_out_trajectories(tmp_path):
    from neurosbi.dynamics.ssm import run_ssm_application

    r = run_ssm_application("mpr-node", out=tmp_path, order=4, field_order=4)
    assert r["spectral_quotient"] == 2.0 and r["ssm_dim"] == 1
    assert r["equation"]["reduced_eigenvalues"][0][0] == pytest.approx(-2.4487, abs=1e-3)
    assert r["equation"]["test_nmte_mean"] < 0.02  # the slow curve carries the relaxation
    assert r["data_svd_tangent"]["test_nmte_mean"] < 0.03
    assert abs(r["data_svd_tangent"]["reduced_eigenvalues"][0][0] + 2.45) < 0.15
    assert (tmp_path / "ssm.png").exists() and json.loads((tmp_path / "ssm.json").read_text())["system"] == "mpr-node"


def test_unknown_neural_system_is_refused_with_the_list(tmp_path):
    from typer.testing import CliRunner

    from neurosbi.cli import app

    res = CliRunner().invoke(app, ["dynamics", "ssm", "hh-spiking", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "hh-rest" in res.output


def test_reduced_dynamics_as_a_map_of_the_sampling_step():
    """T1 on the SSM sampled every 0.5: the map x -> e^{-0.5} x; its rate is the field's eigenvalue −1."""
    trajs = [(tt[::50], y[::50]) for tt, y in t1_trajectories()]  # samples every 0.01 -> every 0.5
    assert np.allclose(np.diff(trajs[0][0]), 0.5)
    ssm = fit_ssm(trajs, 1, order=5, field_order=3, tangent=[[1.0], [0.0]], reduced="map")
    assert ssm.map_step == pytest.approx(0.5) and ssm.field[0, 1] == pytest.approx(np.exp(-0.5), abs=1e-9)
    assert ssm.eigenvalues[0].real == pytest.approx(-1.0, abs=1e-8)
    assert np.max(ssm.trajectory_errors(trajs)) < 1e-8
    with pytest.raises(ValueError, match="reduced='flow'"):
        normal_form(ssm)


def test_real_spectrum_normal_form_keeps_exactly_the_resonant_terms():
    """ẋ = −x + y²/2, ẏ = −2y + x² + xy: 2λx = λy, so x² in ẏ is resonant (kept, coefficient ±1, the sign of
    the eigenvectors) and every other quadratic term is removed."""
    basis = polynomial_basis(2, 2)
    R = np.zeros((2, basis.size))
    R[0, basis.index[(1, 0)]], R[0, basis.index[(0, 2)]] = -1.0, 0.5
    R[1, basis.index[(0, 1)]], R[1, basis.index[(2, 0)]], R[1, basis.index[(1, 1)]] = -2.0, 1.0, 1.0
    nf = normal_form(R, resonance="eigenvalues")
    assert np.allclose(nf.eigenvalues, [-1, -2])
    quad = nf.field[:, nf.basis.of_degree(2)]
    assert abs(abs(quad[1, 0]) - 1.0) < 1e-12  # x² in the y equation
    assert np.count_nonzero(np.abs(quad) > 1e-12) == 1
