"""Spectral submanifolds against closed forms and against SSMLearn's published oscillator-chain error.

1. T1 (SSMTool's planar benchmark, μ = √24): graph coefficients 0.344949, 0.526599, 1.112372, −9.898979
   from the equations, and from trajectories started on the SSM (tangent supplied; tangent jointly fitted).
2. T2 (oscillatory SSM in 3-D): graph coefficients from the equations and from trajectories, tangent supplied.
3. T3 (Stuart–Landau with a slaved coordinate): backbone damping α + βA² and frequency ω + γA², from
   data and from the equations.
4. T4 (Duffing about x = 1): backbone slope dω/d(A²) against Lindstedt and the damped value.
5. The oscillator chain (10-D, 4-D SSM): 6 trajectories started on the SSM (the order-9 equation-driven
   SSM) at radius ``--radius`` in modal coordinates, 140 slow periods, 14,001 samples; trained on 5, tested
   on the first, as in SSMLearn's example (graph order 3 over the modal tangent space, cubic field with
   the linear part fixed). NMTE of the data-driven and equation-driven models, fit time.

    python benchmarks/ssm_benchmarks.py --out benchmarks/results/ssm_benchmarks.json \
        --figure benchmarks/results/ssm_oscillator_chain.png
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import jax  # noqa: E402
import numpy as np  # noqa: E402
from _machine import describe  # noqa: E402

from neurosbi.dynamics import integrate  # noqa: E402
from neurosbi.dynamics.ssm import (  # noqa: E402
    backbone,
    fit_ssm,
    normal_form,
    polynomial_basis,
    spectral_decomposition,
    ssm_from_vector_field,
)
from neurosbi.dynamics.systems import CLOSED_FORM  # noqa: E402


def on_ssm(system, ssm, eta0, t):
    """Trajectories of ``system`` from points of its (equation-driven) SSM over ``eta0`` ``[B, d]``."""
    return integrate(system.field, ssm.parametrization(eta0), t, rtol=1e-12, atol=1e-14)


def equation_ssm(system, order, **kw):
    return ssm_from_vector_field(system.field, system.fixed_point, dim=system.dim, order=order, **kw)


def t1():
    system = CLOSED_FORM["planar-t1"]
    exact = np.asarray(system.known["graph_coefficients"])
    eq = equation_ssm(system, 5)
    t = np.linspace(0, 6, 601)
    trajs = [(t, y) for y in on_ssm(system, eq, np.array([[0.4], [-0.35], [0.25]]), t)]
    out = {"published": [0.344949, 0.526599, 1.112372, -9.898979],
           "equation_max_error": float(np.max(np.abs(eq.graph[1, 2:] - exact)))}
    for name, kw in (("data_tangent_supplied", {"tangent": [[1.0], [0.0]]}), ("data_joint_tangent", {"joint": True}),
                     ("data_svd_tangent", {})):
        fit = fit_ssm(trajs, 1, order=5, field_order=3, **kw)
        out[name] = {"coefficients": fit.graph[1, 2:].tolist(), "max_error": float(np.max(np.abs(fit.graph[1, 2:] - exact))),
                     "seconds": fit.info["seconds"]}
    return out


def t2():
    system = CLOSED_FORM["oscillatory-t2"]
    exact = np.asarray(system.known["graph_x2_xy_y2"])
    eq = equation_ssm(system, 4)
    quad = polynomial_basis(2, 4).of_degree(2)
    t = np.arange(0, 60, 0.02)
    eta0 = np.array([[0.2, 0.0], [0.0, 0.15], [-0.12, 0.12]])
    trajs = [(t, y) for y in on_ssm(system, eq, eta0, t)]
    fit = fit_ssm(trajs, 2, order=2, field_order=1, tangent=np.eye(3)[:, :2])
    return {"exact": exact.tolist(), "equation_max_error": float(np.max(np.abs(eq.graph[2, quad] - exact))),
            "data_tangent_supplied_max_error": float(np.max(np.abs(fit.graph[2, polynomial_basis(2, 2).of_degree(2)]
                                                                   - exact))),
            "data_eigenvalues": [[v.real, v.imag] for v in fit.eigenvalues]}


def t3():
    system = CLOSED_FORM["stuart-landau-t3"]
    k = system.known
    eq = equation_ssm(system, 5)
    t = np.arange(0, 40, 0.01)
    trajs = [(t, y) for y in on_ssm(system, eq, np.array([[0.5, 0.0], [-0.2, 0.35], [0.1, -0.45]]), t)]
    fit = fit_ssm(trajs, 2, order=3, field_order=3, tangent=np.eye(3)[:, :2])
    out = {}
    for name, ssm in (("equation", eq), ("data", fit)):
        bb = backbone(ssm, np.linspace(0.01, 0.5, 20))
        A = bb["amplitude"]
        out[name] = {"max_damping_error": float(np.max(np.abs(bb["damping"] - (k["alpha"] + k["beta"] * A**2)))),
                     "max_frequency_error": float(np.max(np.abs(bb["frequency"] - (k["omega"] + k["gamma"] * A**2)))),
                     "max_amplitude": float(A.max())}
    return out


def t4():
    system = CLOSED_FORM["duffing-t4"]
    eq = equation_ssm(system, 3)
    nf = normal_form(eq)
    bb = backbone(eq, [1e-5, 2e-5], form=nf)
    slope = float(np.diff(bb["frequency"])[0] / np.diff(bb["amplitude"] ** 2)[0])
    return {"slope": slope, "lindstedt_undamped": system.known["lindstedt_slope"],
            "published_damped": system.known["damped_slope"],
            "damping_slope": float(np.diff(bb["damping"])[0] / np.diff(bb["amplitude"] ** 2)[0]),
            "normal_form": {k: [v.real, v.imag] for k, v in nf.coefficients().items()}}


def chain(radius: float, seed: int):
    system = CLOSED_FORM["oscillator-chain"]
    eq9 = equation_ssm(system, 9, field_degree=3)
    lam = np.asarray(eq9.info["eigenvalues"])
    # initial conditions: modal amplitudes p1, p2 on a sphere of the given radius in R^4, lifted onto the SSM
    jac = np.asarray(jax.jacfwd(system.field)(system.fixed_point))
    _, vectors = spectral_decomposition(jac)
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(6, 4))
    p = radius * p / np.linalg.norm(p, axis=1, keepdims=True)
    modal = np.stack([p[:, 0] + 1j * p[:, 1], p[:, 2] + 1j * p[:, 3]], 1)
    eta0 = (2 * np.real(modal @ vectors[:, [0, 2]].T)) @ eq9.tangent
    period = 2 * np.pi / abs(lam[0])
    t = np.linspace(0, 140 * period, 14001)
    start = time.perf_counter()
    Y = on_ssm(system, eq9, eta0, t)
    sim_seconds = time.perf_counter() - start
    trajs = [(t, y) for y in Y]
    V = eq9.tangent
    fit = fit_ssm(trajs[1:], 4, order=3, field_order=3, tangent=V, field_linear_part=V.T @ jac @ V)
    free = fit_ssm(trajs[1:], 4, order=3, field_order=3, tangent=V)
    out = {"radius": radius, "seed": seed, "max_abs_q1": float(np.max(np.abs(Y[:, :, 0]))),
           "simulation_seconds": sim_seconds, "samples_per_trajectory": len(t), "dt": float(t[1] - t[0]),
           "published_test_nmte": system.known["published_nmte"],
           "data_linear_part_fixed": {"test_nmte": float(fit.trajectory_errors(trajs[:1])[0]),
                                      "train_nmte_mean": float(np.mean(fit.trajectory_errors(trajs[1:]))),
                                      "fit_seconds": fit.info["seconds"], "ridge": fit.info["ridge"]},
           "data_linear_part_fitted": {"test_nmte": float(free.trajectory_errors(trajs[:1])[0]),
                                       "fit_seconds": free.info["seconds"],
                                       "eigenvalues": [[v.real, v.imag] for v in free.eigenvalues]}}
    for order in (3, 5, 9):
        eq = eq9 if order == 9 else equation_ssm(system, order, field_degree=3)
        out[f"equation_order_{order}"] = {"test_nmte": float(eq.trajectory_errors(trajs[:1])[0]),
                                          "seconds": eq.info["seconds"]}
    return out, t, Y[0], fit.predict(t, Y[0, 0]), eq9.predict(t, Y[0, 0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--radii", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = {"machine": describe(), "command": " ".join(sys.argv), "t1": t1(), "t2": t2(), "t3": t3(), "t4": t4(),
              "oscillator_chain": []}
    for radius in args.radii:
        row, t, y, pred_data, pred_eq = chain(radius, args.seed)
        result["oscillator_chain"].append(row)
        if args.figure and radius == args.radii[0]:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
            for a, (i, label) in zip(ax, ((0, "q1"), (4, "q5"))):
                a.plot(t, y[:, i], "k", lw=0.6, label="full 10-D system (test trajectory)")
                a.plot(t, pred_data[:, i], "C1--", lw=0.6, label=f"data-driven SSM, NMTE {row['data_linear_part_fixed']['test_nmte']:.2%}")
                a.plot(t, pred_eq[:, i], "C0:", lw=0.6, label=f"equation SSM (order 9), NMTE {row['equation_order_9']['test_nmte']:.2%}")
                a.set_ylabel(label)
            ax[0].legend(fontsize=7, loc="upper right")
            ax[0].set_xlim(0, t[-1] / 6)
            ax[1].set_xlabel("time")
            fig.suptitle(f"Oscillator chain, 4-D SSM (published SSMLearn NMTE 2.65 %); modal radius {radius}")
            fig.tight_layout()
            args.figure.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(args.figure, dpi=120)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
