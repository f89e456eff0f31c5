"""Data-driven SSM (the method of SSMLearn, Cenedese et al. 2022, written from its description):
trajectories near a stable fixed point → tangent space → polynomial graph with ``Vᵀ H = 0`` → polynomial
reduced vector field fitted to finite-difference derivatives.

- Tangent space: the ``d`` leading right singular vectors of the snapshot matrix about the fixed point
  (never mean-centred: the fixed point is the origin of the manifold), or supplied, or, with
  ``joint=True``, optimized together with the graph (variable projection: for each ``V`` the graph is
  the closed-form least-squares solution, and ``V`` on the Stiefel manifold minimizes what remains).
- Graph: with orthonormal ``V`` and ``η = Vᵀ y`` the residual ``(I − VVᵀ) y`` is orthogonal to ``V``,
  so the unconstrained ridge solution already satisfies ``Vᵀ H = 0`` exactly; no KKT system needed.
- Reduced field: central differences of accuracy 8 (default), ridge regression on monomials scaled to
  unit maximum, the ridge chosen by cross-validation over trajectories (folds of whole trajectories).
  A ridge λ adds λ · mean(diag(ΦᵀΦ)) to the diagonal: relative to the features' own power, since data
  decaying to a fixed point leave most monomials far below their maximum (an absolute λ N, SSMLearn's
  scaling, let cross-validation pick penalties that swamped the cubic terms of the Wilson–Cowan fit).

Data can only determine the SSM's terms of degree below the spectral quotient unless they start on the
SSM (reference notes §2.2): the other invariant manifolds tangent to the same space differ from it by
``C |η|^σ`` terms, which look like high-degree monomials.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .._embedding import as_trajectory, time_derivative
from .._polynomials import PolynomialBasis
from ._manifold import SpectralSubmanifold, oriented, polynomial_basis

DEFAULT_RIDGES = (0.0, *np.logspace(-12, -2, 11))


def _stack(trajectories, fixed_point):
    trajectories = [as_trajectory(t, y) for t, y in trajectories]
    if not trajectories:
        raise ValueError("expected at least one trajectory (t, y)")
    p = trajectories[0][1].shape[1]
    for n, (t, y) in enumerate(trajectories):
        if y.ndim != 2 or y.shape[1] != p or y.shape[0] != t.shape[0]:
            raise ValueError(f"trajectory {n}: expected t [T] and y [T, {p}], got {t.shape}, {y.shape}")
    y0 = np.zeros(p) if fixed_point is None else np.asarray(fixed_point, float).ravel()
    if y0.shape != (p,):
        raise ValueError(f"expected a fixed point of {p} values, got {y0.shape}")
    return trajectories, y0


def _graph_least_squares(Y, V, basis: PolynomialBasis, ridge: float):
    """``H`` ``[p, size]`` minimizing ‖(I − VVᵀ)Y − H φ(VᵀY)‖² + ridge ‖H‖² (monomials scaled to unit max)."""
    eta = Y @ V
    cols = basis.up_to(basis.max_order, start=2)
    phi = basis.evaluate(eta)[:, cols]
    scale = np.max(np.abs(phi), axis=0)
    scale[scale == 0] = 1.0
    phi = phi / scale
    residual = Y - eta @ V.T
    if ridge > 0:
        gram = phi.T @ phi
        coef = np.linalg.solve(gram + ridge * np.trace(gram) / len(gram) * np.eye(len(gram)), phi.T @ residual)
    else:
        coef = np.linalg.lstsq(phi, residual, rcond=None)[0]
    H = np.zeros((Y.shape[1], basis.size))
    H[:, cols] = (coef / scale[:, None]).T
    return H


def _joint_tangent(Y, V0, basis: PolynomialBasis, ridge: float, max_iter: int) -> tuple[np.ndarray, dict]:
    """Variable projection over ``V`` = the Q factor of an unconstrained ``[p, d]`` matrix."""
    cols = basis.up_to(basis.max_order, start=2)
    exps = basis.exponents[cols]
    p, d = V0.shape
    with jax.enable_x64(True):
        Yj = jnp.asarray(Y)
        scale = jnp.max(jnp.abs(Yj)) or 1.0

        def loss(a):
            q, r = jnp.linalg.qr(a.reshape(p, d))
            V = q * jnp.sign(jnp.diag(r))[None]
            eta = Yj @ V / scale
            phi = jnp.prod(eta[:, None, :] ** exps[None], axis=-1)
            resid = Yj / scale - eta @ V.T
            gram = phi.T @ phi + (ridge + 1e-14) * len(phi) * jnp.eye(phi.shape[1])
            coef = jnp.linalg.solve(gram, phi.T @ resid)
            return jnp.sum((resid - phi @ coef) ** 2) / len(phi)

        value_and_grad = jax.jit(jax.value_and_grad(loss))

        def fun(a):
            v, g = value_and_grad(jnp.asarray(a))
            return float(v), np.asarray(g, float)

        loss_start = fun(V0.ravel())[0]
        res = scipy.optimize.minimize(fun, V0.ravel(), jac=True, method="L-BFGS-B",
                                      options={"maxiter": max_iter, "ftol": 1e-30, "gtol": 1e-14})
        q, r = np.linalg.qr(res.x.reshape(p, d))
    V = q * np.sign(np.diag(r))[None]
    return V, {"joint_iterations": int(res.nit), "joint_loss_start": loss_start, "joint_loss_end": float(res.fun)}


def fit_manifold(trajectories, dim: int, order: int, *, tangent=None, fixed_point=None, joint: bool = False,
                 ridge: float = 0.0, max_iter: int = 500):
    """Tangent space ``V`` and graph ``H`` of a ``dim``-dimensional SSM from trajectories ``(t, y)``.

    Returns ``(V, H, info)``; see :func:`fit_ssm` for the arguments."""
    trajectories, y0 = _stack(trajectories, fixed_point)
    Y = np.concatenate([y for _, y in trajectories]) - y0
    p = Y.shape[1]
    if not 1 <= dim < p:
        raise ValueError(f"expected 1 <= dim < {p} (the observable space's dimension), got dim={dim}; with few "
                         "observables, delay-embed them first (neurosbi.dynamics.delay_embed)")
    basis = polynomial_basis(dim, order)
    if len(Y) < basis.size:
        raise ValueError(f"{len(Y)} samples cannot fit a graph with {basis.size} monomials: record more or "
                         "lower the order")
    info = {}
    if tangent is not None:
        V = np.asarray(tangent, float)
        if V.shape != (p, dim):
            raise ValueError(f"expected a tangent basis of shape {(p, dim)}, got {V.shape}")
        V = oriented(np.linalg.qr(V)[0])
    else:
        V = oriented(np.linalg.svd(Y, full_matrices=False)[2][:dim].T)  # uncentred: the fixed point is the origin
    if joint and order >= 2:
        V, extra = _joint_tangent(Y, V, basis, ridge, max_iter)
        info.update(extra)
    H = _graph_least_squares(Y, V, basis, ridge)
    return V, H, info


def _ridge_fit(X, Y, groups, n_groups: int, order: int, ridge, folds: int, linear_part):
    """``R`` ``[d, size]`` with ``Y ≈ R(X)`` over monomials of degree 1..order (2..order plus the given
    linear part); the ridge chosen by cross-validation when None. Returns ``(R, info)``."""
    d = X.shape[1]
    basis = polynomial_basis(d, order)
    cols = basis.up_to(order, start=1 if linear_part is None else 2)
    if linear_part is not None:
        linear_part = np.asarray(linear_part, float)
        if linear_part.shape != (d, d):
            raise ValueError(f"expected a linear part of shape {(d, d)}, got {linear_part.shape}")
        Y = Y - X @ linear_part.T
    phi = basis.evaluate(X)[:, cols]
    scale = np.max(np.abs(phi), axis=0)
    scale[scale == 0] = 1.0
    phi = phi / scale
    if len(phi) < len(cols):
        raise ValueError(f"{len(phi)} samples cannot fit reduced dynamics with {len(cols)} monomials per "
                         "coordinate: record longer trajectories or lower the order")

    def solve(rows, lam):
        A, b = phi[rows], Y[rows]
        if lam > 0:
            gram = A.T @ A
            return np.linalg.solve(gram + lam * np.trace(gram) / len(gram) * np.eye(len(gram)), A.T @ b)
        return np.linalg.lstsq(A, b, rcond=None)[0]

    info = {}
    if ridge is None:
        fold_of = groups % min(folds, n_groups) if n_groups >= 2 else (np.arange(len(X)) * folds) // len(X)
        k = int(fold_of.max()) + 1
        scores = []
        for lam in DEFAULT_RIDGES:
            err = 0.0
            for f in range(k):
                coef = solve(fold_of != f, lam)
                err += float(np.sum((phi[fold_of == f] @ coef - Y[fold_of == f]) ** 2))
            scores.append(err / len(X))
        ridge = float(DEFAULT_RIDGES[int(np.argmin(scores))])
        info["cv_scores"] = dict(zip((float(v) for v in DEFAULT_RIDGES), scores))
    coef = solve(np.ones(len(X), bool), float(ridge))
    R = np.zeros((d, basis.size))
    R[:, cols] = (coef / scale[:, None]).T
    if linear_part is not None:
        R[:, basis.of_degree(1)] = linear_part
    info["ridge"] = float(ridge)
    info["field_rmse"] = float(np.sqrt(np.mean((phi @ coef - Y) ** 2)))
    return R, info


def fit_reduced_field(eta_trajectories, order: int, *, ridge=None, accuracy: int = 8, folds: int = 5,
                      linear_part=None):
    """Polynomial ``R`` ``[d, size]`` (degree 1..order) with ``η̇ ≈ R(η)``; ``ridge`` a number, or None to
    choose it among ``DEFAULT_RIDGES`` by cross-validation (whole trajectories held out when there are at
    least two, else contiguous blocks). ``linear_part`` ``[d, d]`` fixes the Jacobian (e.g. from the
    linearization) and fits only the nonlinear terms. Returns ``(R, info)``."""
    xs, dxs, groups = [], [], []
    for n, (t, eta) in enumerate(eta_trajectories):
        _, e, de = time_derivative(t, eta, accuracy)
        xs.append(e)
        dxs.append(de)
        groups.append(np.full(len(e), n))
    R, info = _ridge_fit(np.concatenate(xs), np.concatenate(dxs), np.concatenate(groups), len(eta_trajectories),
                         order, ridge, folds, linear_part)
    return R, {"derivative_accuracy": accuracy, **info}


def fit_reduced_map(eta_trajectories, order: int, *, ridge=None, folds: int = 5):
    """Polynomial map ``R`` ``[d, size]`` (degree 1..order) with ``η_{k+1} ≈ R(η_k)`` on consecutive samples
    (one time step for all trajectories). Returns ``(R, info)`` with ``info["map_step"]``."""
    xs, ys, groups, steps = [], [], [], []
    for n, (t, eta) in enumerate(eta_trajectories):
        t, eta = as_trajectory(t, eta)
        if len(t) < 2:
            raise ValueError(f"trajectory {n} has fewer than 2 samples: a map needs consecutive pairs")
        steps.append(np.diff(t))
        xs.append(eta[:-1])
        ys.append(eta[1:])
        groups.append(np.full(len(eta) - 1, n))
    dt = np.concatenate(steps)
    if np.ptp(dt) > 1e-9 * abs(dt.mean()):
        raise ValueError("a reduced map needs one sampling step for every trajectory; resample them first")
    R, info = _ridge_fit(np.concatenate(xs), np.concatenate(ys), np.concatenate(groups), len(eta_trajectories),
                         order, ridge, folds, None)
    info["map_step"] = float(dt.mean())
    return R, info


def fit_ssm(trajectories, dim: int, *, order: int = 3, field_order: int = 3, tangent=None, fixed_point=None,
            joint: bool = False, ridge: float = 0.0, field_ridge=None, accuracy: int = 8,
            field_linear_part=None, reduced: str = "flow") -> SpectralSubmanifold:
    """A ``dim``-dimensional SSM fitted to trajectories ``[(t, y), ...]`` near a stable fixed point.

    Args:
        trajectories: ``(t [T], y [T, p])`` pairs, uniformly sampled, transients removed (or delay-embedded
            observables, see :func:`neurosbi.dynamics.delay_embed`).
        dim: dimension of the SSM.
        order: degree of the graph (parametrization).
        field_order: degree of the reduced vector field.
        tangent: ``[p, dim]`` tangent space to use (e.g. from the linearization, or the Vandermonde modes of a
            delay embedding); default: leading singular vectors of the data about the fixed point.
        fixed_point: ``y*`` ``[p]`` (default 0).
        joint: optimize the tangent space together with the graph (needs ``order >= 2``).
        ridge: ridge penalty of the graph regression.
        field_ridge: ridge penalty of the reduced field; None chooses it by cross-validation.
        accuracy: order of the central differences for the time derivatives.
        field_linear_part: ``[dim, dim]`` Jacobian of the reduced field in the chart coordinates, when known
            (e.g. ``Vᵀ A V`` from the linearization); only the nonlinear terms are then fitted.
        reduced: ``flow`` (a vector field fitted to finite-difference derivatives) or ``map`` (the map from one
            sample to the next: no derivatives, for coarsely sampled data; no normal form).

    Example:
        >>> ssm = fit_ssm(trajectories, dim=2, order=3, field_order=5)
        >>> ssm.trajectory_errors(test_trajectories)  # NMTE per trajectory
    """
    start = time.perf_counter()
    trajectories, y0 = _stack(trajectories, fixed_point)
    V, H, info = fit_manifold(trajectories, dim, order, tangent=tangent, fixed_point=y0, joint=joint, ridge=ridge)
    eta = [(t, (y - y0) @ V) for t, y in trajectories]
    if reduced == "flow":
        R, field_info = fit_reduced_field(eta, field_order, ridge=field_ridge, accuracy=accuracy,
                                          linear_part=field_linear_part)
    elif reduced == "map":
        if field_linear_part is not None:
            raise ValueError("field_linear_part fixes a vector field's Jacobian; with reduced='map' leave it None")
        R, field_info = fit_reduced_map(eta, field_order, ridge=field_ridge)
    else:
        raise ValueError(f"expected reduced='flow' or 'map', got {reduced!r}")
    ssm = SpectralSubmanifold(fixed_point=y0, tangent=V, graph=H, order=order, field=R, field_order=field_order,
                              info={"method": "data", **info, **field_info}, map_step=field_info.get("map_step"))
    ssm.info["parametrization_error"] = float(np.mean(ssm.parametrization_errors(trajectories)))
    ssm.info["seconds"] = time.perf_counter() - start
    return ssm
