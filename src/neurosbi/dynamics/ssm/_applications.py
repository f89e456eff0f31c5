"""SSM reductions of neural models (``neurosbi dynamics ssm NAME``): the equation-driven SSM and a
data-driven one fitted to simulated trajectories, both scored on held-out trajectories of the full model.

For a system of :mod:`neurosbi.dynamics.systems` (``mpr-node``, ``hh-rest``, ``wilson-cowan``,
``rnn-line``): trajectories of the full model from random initial conditions near the fixed point
(perturbations along every eigen-direction, so the fast modes are excited too), the first
``3 / |Re λ_fast|`` time units cut so the data lie near the SSM (SSMLearn's ``sliceTrajectories``);
6 trajectories train the data-driven SSM (tangent from the SVD of the data about the fixed point, and
jointly optimized with the graph), 4 are held out; each reduced model predicts the held-out trajectories from their first retained sample, scored
by NMTE. Writes ``ssm.json`` and ``ssm.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

from ... import plotting
from .._integrate import integrate
from ..systems import NEURAL
from ._equation import choose_modes, spectral_decomposition, ssm_from_vector_field
from ._fit import fit_ssm

TRAIN, TEST = 6, 4


def _initial_conditions(system, vectors, eigenvalues, modes, amplitude, key):
    """``x* + Σ_k c_k Re(v_k)`` (unit eigenvectors) with ``c`` uniform on a sphere of radius ``amplitude``;
    the slow modes get the full amplitude, the fast ones a third of it."""
    rng = np.random.default_rng(key)
    c = rng.normal(size=(TRAIN + TEST, len(eigenvalues)))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    weight = np.where(np.isin(np.arange(len(eigenvalues)), modes), 1.0, 1.0 / 3.0)
    basis = np.real(vectors).copy()
    for k in range(len(eigenvalues)):  # the second member of a complex pair brings Im v
        if eigenvalues[k].imag < 0:
            basis[:, k] = np.imag(vectors[:, k])
    return system.fixed_point + (c * weight * amplitude) @ basis.T


def run_ssm_application(name: str, *, out, order: int = 5, data_order: int = 3, field_order: int = 5,
                        amplitude: float | None = None, seed: int = 0) -> dict:
    """Equation- and data-driven SSM of neural system ``name`` scored on held-out trajectories; see module."""
    if name not in NEURAL:
        raise ValueError(f"unknown system {name!r}; choose one of {', '.join(NEURAL)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    system = NEURAL[name]()
    start = time.perf_counter()
    eq = ssm_from_vector_field(system.field, system.fixed_point, dim=system.dim, order=order)
    eq_seconds = time.perf_counter() - start
    with jax.enable_x64(True):
        jac = np.asarray(jax.jacfwd(system.field)(jax.numpy.asarray(system.fixed_point)))
    lam, vectors = spectral_decomposition(jac)
    modes = choose_modes(lam, system.dim)
    slow = float(np.max(lam[modes].real))
    fast = float(np.max(np.delete(lam, modes).real))
    amplitude = _DEFAULT_AMPLITUDE[name] if amplitude is None else amplitude
    x0 = _initial_conditions(system, vectors / np.linalg.norm(vectors, axis=0), lam, modes, amplitude, seed)
    t_cut, t_end = 3.0 / abs(fast), 3.0 / abs(fast) + 4.0 / abs(slow)
    t = np.linspace(0.0, t_end, 2001)
    full = integrate(system.field, x0, t)
    keep = t >= t_cut
    tk = t[keep] - t[keep][0]
    trajs = [(tk, y[keep]) for y in full]
    if not all(np.all(np.isfinite(y)) for _, y in trajs):
        raise RuntimeError(f"{name}: a full-model trajectory failed; lower the amplitude ({amplitude})")
    train, test = trajs[:TRAIN], trajs[TRAIN:]
    test_eq = eq.trajectory_errors(test)
    result = {
        "system": name, "description": system.description, "state_dim": int(system.fixed_point.size),
        "ssm_dim": system.dim, "fixed_point": system.fixed_point.tolist(),
        "eigenvalues": [[float(v.real), float(v.imag)] for v in lam], "modes": modes,
        "spectral_quotient": eq.info["spectral_quotient"], "amplitude": amplitude, "seed": seed,
        "time": {"cut": t_cut, "span": float(tk[-1]), "samples": int(keep.sum())},
        "equation": {"order": order, "seconds": eq_seconds, "test_nmte": test_eq.tolist(),
                     "test_nmte_mean": float(np.mean(test_eq)),
                     "reduced_eigenvalues": [[float(v.real), float(v.imag)] for v in eq.eigenvalues]},
    }
    predictions = {"equation SSM": eq.predict(test[0][0], test[0][1][0])}
    for label, joint in (("data_svd_tangent", False), ("data_joint_tangent", True)):
        data = fit_ssm(train, system.dim, order=data_order, field_order=field_order, fixed_point=system.fixed_point,
                       joint=joint)
        errors = data.trajectory_errors(test)
        result[label] = {"order": data_order, "field_order": field_order, "seconds": data.info["seconds"],
                         "ridge": data.info["ridge"], "parametrization_error": data.info["parametrization_error"],
                         "test_nmte": errors.tolist(), "test_nmte_mean": float(np.mean(errors)),
                         # largest principal angle between the fitted and the true tangent space
                         "tangent_angle_degrees": float(np.degrees(np.arccos(np.clip(
                             np.linalg.svd(data.tangent.T @ eq.tangent, compute_uv=False).min(), -1, 1)))),
                         "reduced_eigenvalues": [[float(v.real), float(v.imag)] for v in data.eigenvalues]}
        predictions[label.replace("_", " ")] = data.predict(test[0][0], test[0][1][0])
    plotting.ssm_application(name, test[0][0], test[0][1], predictions, [y for _, y in trajs], eq, result,
                             state_names=system.state_names, path=out / "ssm.png")
    (out / "ssm.json").write_text(json.dumps(result, indent=1))
    return result


# perturbation radius along the unit eigenvectors: a few mV for HH, a visible but convergent range elsewhere
_DEFAULT_AMPLITUDE = {"mpr-node": 0.3, "hh-rest": 2.0, "wilson-cowan": 0.1, "rnn-line": 1.0}
