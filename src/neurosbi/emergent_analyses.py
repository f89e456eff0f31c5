"""The scientific analyses of the EPI paper (Bittner et al. 2021), each one call and one command:
``neurosbi epi-analysis NAME --out DIR``.

Each analysis runs the EPI fits it needs with the models' published settings (``run_epi``, one folder
per fit under ``DIR``; a fit already there is loaded, not rerun, so an interrupted analysis resumes),
then measures what the paper reads off the distribution and writes ``analysis.json`` and a figure.
With several seeds (``--seed 1 --seed 2 ...``) each fit runs once per seed under ``DIR/seed-K/`` and the
analysis uses, per fit, the converged distribution of greatest entropy (the paper's choice among random
seeds, e.g. 5 for SC); ``analysis.json`` lists every seed's result under ``seeds``.

- ``lds-contours``: the 2-D linear system's EPI samples against the analytic contours of its
  statistics: Re λ₁ = (a11 + a22)/2 and Im λ₁ = √(−a12 a21 − ((a11 − a22)/2)²).
- ``v1-variability``: V1 noise stds for E variability of 5 Hz and 10 Hz: σ_E² + σ_P² is what the
  property fixes (a ring in the (σ_E, σ_P) plane, larger for 10 Hz), and σ_S, σ_V stay free.
- ``sc-regimes``: the SC Pro/Anti distribution's conditional modes z*(sW) for sW = 1 … −1, the sensitivity
  dimension v1 at each, and (p_P, p_A) along v1 and along the task and diag eigenmodes of W: regime 1
  loses Anti accuracy on both sides of the mode along v1, regime 2 gains it with Pro accuracy (among the
  modes that show the property; q's mass on sW > 0 is reported).
- ``stg-sensitivity``: the STG hub-frequency distribution's Hessian at its mode (published eigenvalues
  −10.7 and −3.22), the hub frequency along equal steps in the sensitive and robust directions, and the
  mean hub-frequency map over the box with the 0.55 ± 0.025 Hz contours.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from . import plotting
from . import priors as _priors
from .emergent import epi_config_for, run_epi
from .inference import load_epi
from .inference.epi import predictive_statistics
from .models import Model, get

NUM_SAMPLES = 5000


@dataclass(frozen=True)
class Fit:
    """One EPI fit an analysis needs: a registered model (default options) and one of its properties."""

    model: str
    prop: str

    @property
    def folder(self) -> str:
        return f"{self.model}_{self.prop}"

    def build(self) -> Model:
        return get(self.model)


def fit_or_load(fit: Fit, out: Path, *, seed: int, max_epochs: int | None = None, progress: bool = True):
    """The distribution of ``fit`` under ``out``: loaded when its ``metrics.json`` exists, else fitted."""
    folder = out / fit.folder
    model = fit.build()
    if not (folder / "metrics.json").exists():
        config = epi_config_for(model, max_epochs=max_epochs)
        run_epi(model, out=folder, prop=model.emergent_property(fit.prop), seed=seed, config=config,
                progress=progress)
    metrics = json.loads((folder / "metrics.json").read_text())
    return model, load_epi(folder / "distribution"), metrics


def _signed(v, index, positive: bool = True):
    """``v`` with the sign that makes ``v[index]`` positive (or negative): eigenvectors have no sign of
    their own, the paper fixes one per figure."""
    return v if (v[index] >= 0) == positive else -v


def lds_contours(fits: dict, out: Path, key) -> dict:
    """Analytic contours of the LDS statistics against EPI samples."""
    (model, dist, metrics), = fits.values()
    a = np.asarray(dist.sample(key, NUM_SAMPLES), np.float64)
    re, imag = np.asarray(model.simulate_features(key, a.astype(np.float32)), np.float64).T  # closed form
    prop = model.emergent_property()
    result = {
        "converged": metrics["converged"],
        "fraction_complex": float(np.mean(imag > 0)),
        "re_lambda1": {"mean": float(re.mean()), "sd": float(re.std()),
                       "target_mean": prop.mean[0], "target_sd": float(np.sqrt(prop.variance[0]))},
        "im_lambda1": {"mean": float(imag.mean()), "sd": float(imag.std()),
                       "target_mean": prop.mean[1], "target_sd": float(np.sqrt(prop.variance[1]))},
        "corr_a11_a22": float(np.corrcoef(a[:, 0], a[:, 3])[0, 1]),
        "corr_a12_a21": float(np.corrcoef(a[:, 1], a[:, 2])[0, 1]),
        "fraction_a12_a21_opposite_sign": float(np.mean(a[:, 1] * a[:, 2] < 0)),
    }
    plotting.lds_contours(a, re, imag, prop.mean, np.sqrt(prop.variance), path=out / "lds_contours.png")
    return result


def _v1_summary(z, stats) -> dict:
    energy = z[:, 0] ** 2 + z[:, 1] ** 2
    return {
        "s_E": {"mean": float(stats.mean()), "sd": float(stats.std())},
        "sigma_E2_plus_sigma_P2": {"mean": float(energy.mean()), "sd": float(energy.std()),
                                   "cv": float(energy.std() / energy.mean())},
        "corr_sigma_E2_sigma_P2": float(np.corrcoef(z[:, 0] ** 2, z[:, 1] ** 2)[0, 1]),
        # s_E against sigma_E^2 + sigma_P^2 and against sigma_S, sigma_V (the paper: only the first matters)
        "corr_s_E_with": {"sigma_E2_plus_sigma_P2": float(np.corrcoef(stats, energy)[0, 1]),
                          "sigma_S": float(np.corrcoef(stats, z[:, 2])[0, 1]),
                          "sigma_V": float(np.corrcoef(stats, z[:, 3])[0, 1])},
        # a maximum-entropy distribution leaves a parameter the property ignores uniform on [0, 0.5]:
        # mean 0.25, sd 0.144
        "sigma_S": {"mean": float(z[:, 2].mean()), "sd": float(z[:, 2].std())},
        "sigma_V": {"mean": float(z[:, 3].mean()), "sd": float(z[:, 3].std())},
        "uniform_reference": {"mean": 0.25, "sd": 0.5 / np.sqrt(12)},
    }


V1_SIGMA_P_GRID = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def v1_variability(fits: dict, out: Path, key) -> dict:
    """σ_E² + σ_P² against the E-variability target; σ_S, σ_V free."""
    result, panels = {}, {}
    for (model, dist, metrics), k in zip(fits.values(), jax.random.split(key, len(fits))):
        prop = model.emergent_property(metrics["property"]["name"])
        k_sample, k_stats, k_modes = jax.random.split(k, 3)
        z = np.asarray(dist.sample(k_sample, 2000), np.float64)
        stats = predictive_statistics(prop, k_stats, z, 100)[:, 0].astype(np.float64)
        modes = []  # the paper's Fig. 3E: modes z*(σ_P) along σ_P and the sensitivity dimension at each
        for s_p, km in zip(V1_SIGMA_P_GRID, jax.random.split(k_modes, len(V1_SIGMA_P_GRID))):
            z_star = dist.mode(km, fixed={"sigma_P": s_p})
            values, vectors = dist.sensitivity(z_star)
            v1 = _signed(vectors[:, 0], 0)  # positive σ_E, as the paper draws it
            modes.append({"sigma_P": s_p, "mode": z_star.tolist(),
                          "sigma_E2_plus_sigma_P2": float(z_star[0] ** 2 + z_star[1] ** 2),
                          "hessian_eigenvalues": values.tolist(), "sensitive_direction_v1": v1.tolist()})
        result[prop.name] = {"converged": metrics["converged"], "target": prop.mean[0], **_v1_summary(z, stats),
                             "modes_along_sigma_P": modes}
        panels[prop.name] = (z, stats, np.array([m["mode"] for m in modes]))
    # s_E² against the four σ²: in the simplified linear model (τ = τ_noise) the variance is a quadratic
    # form in σ, so the level sets are ellipsoids; the weights say which inputs matter
    z_all = np.concatenate([p[0] for p in panels.values()])
    s_all = np.concatenate([p[1] for p in panels.values()])
    design = np.column_stack([np.ones(len(z_all)), z_all**2])
    coef, *_ = np.linalg.lstsq(design, s_all**2, rcond=None)
    fitted = design @ coef
    result["quadratic_fit"] = {
        "model": "s_E^2 = c0 + c_E sigma_E^2 + c_P sigma_P^2 + c_S sigma_S^2 + c_V sigma_V^2 (both properties' samples)",
        "coefficients": dict(zip(("c0", "c_E", "c_P", "c_S", "c_V"), coef.tolist())),
        "r2": float(1 - np.sum((s_all**2 - fitted) ** 2) / np.sum((s_all**2 - np.mean(s_all**2)) ** 2)),
    }
    plotting.v1_variability(panels, path=out / "v1_variability.png")
    return result


STG_PUBLISHED_EIGENVALUES = (-10.7, -3.22)  # Hessian of log q at the mode (Bittner et al. 2021, Fig. 1D)


def stg_frequency_grid(model, key, points: int, draws: int):
    """The STG hub frequency on a ``points`` × ``points`` grid over the box (g_el major), ``draws`` noise
    draws per point: ``(g_el, g_synA, omega[draws, points²])``."""
    freq = jax.jit(model.hub_frequency)
    low, high = _priors.bounds(model.prior)
    g_el, g_syn = np.linspace(low[0], high[0], points), np.linspace(low[1], high[1], points)
    grid = np.stack(np.meshgrid(g_el, g_syn, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
    omega = np.stack([np.asarray(freq(k, grid))[:, 0] for k in jax.random.split(key, draws)])
    return g_el, g_syn, omega


def stg_sensitivity(fits: dict, out: Path, key) -> dict:
    """STG hub frequency: sensitive and robust directions at the mode against the frequency map."""
    (model, dist, metrics), = fits.values()
    prop = model.emergent_property()
    k_mode, k_grid, k_pert, k_sample = jax.random.split(key, 4)
    mode = dist.mode(k_mode)
    values, vectors = dist.sensitivity(mode)
    v1, v2 = _signed(vectors[:, 0], 1), _signed(vectors[:, 1], 1)  # positive g_synA, as the paper draws them
    freq = jax.jit(model.hub_frequency)
    low, high = _priors.bounds(model.prior)
    # mean hub frequency on a grid (the paper's error contours): 20 noise draws per point
    g_el, g_syn, draws = stg_frequency_grid(model, k_grid, 41, 20)
    omega = draws.mean(0).reshape(41, 41)
    # equal steps from the mode along v1 and v2: the property should break only along v1
    steps = np.linspace(-1.0, 1.0, 9)
    along = {}
    for label, v in (("sensitive_v1", v1), ("robust_v2", v2)):
        pts = (mode[None] + steps[:, None] * v[None]).astype(np.float32)
        pts = np.clip(pts, low, high)
        w = np.mean([np.asarray(freq(k, pts))[:, 0] for k in jax.random.split(k_pert, 100)], 0)
        along[label] = {"step_nS": steps.tolist(), "hub_frequency_Hz": w.tolist(),
                        "max_abs_error_Hz": float(np.max(np.abs(w - prop.mean[0])))}
    samples = np.asarray(dist.sample(k_sample, 2000))
    result = {
        "mode_nS": dict(zip(model.param_names, mode.tolist())),
        "hessian_eigenvalues": values.tolist(), "published_eigenvalues": list(STG_PUBLISHED_EIGENVALUES),
        "sensitive_direction_v1": v1.tolist(), "robust_direction_v2": v2.tolist(),
        "perturbations": along,
    }
    plotting.stg_sensitivity(samples, g_el, g_syn, omega, mode, (v1, v2), values, prop.mean[0],
                             np.sqrt(prop.variance[0]), path=out / "stg_sensitivity.png")
    return result


SC_SW_GRID = tuple(np.round(np.arange(1.0, -1.01, -0.25), 2))  # the paper's conditional modes z*(sW)
SC_STEPS = tuple(np.round(np.linspace(-1.0, 1.0, 9), 2))  # perturbation sizes along each direction


def _sc_profile(accuracy, key, z0, direction) -> np.ndarray:
    """(p_P, p_A) at z0 + t · direction for t in ``SC_STEPS``: ``[len(SC_STEPS), 2]``."""
    pts = (np.asarray(z0)[None] + np.asarray(SC_STEPS)[:, None] * np.asarray(direction)[None]).astype(np.float32)
    return np.asarray(accuracy(key, np.clip(pts, -5, 5)))


def sc_regimes(fits: dict, out: Path, key) -> dict:
    """SC Pro/Anti: conditional modes along sW, their sensitivity dimensions, and the accuracies along
    the sensitivity dimension and along the task and diag eigenmodes of the connectivity."""
    from .models.sc_proanti import MODES, SCProAnti

    (model, dist, metrics), = fits.values()
    accuracy = jax.jit(SCProAnti(trials=1000).accuracy)  # 1,000 trials per point for the profiles
    eigen_directions = {name: MODES[:, i] / np.linalg.norm(MODES[:, i]) for i, name in
                        enumerate(("all", "side", "task", "diag"))}
    k_modes, k_prof, k_sample = jax.random.split(key, 3)
    prop = model.emergent_property()
    target, target_sd = np.asarray(prop.mean, float)[:2], np.sqrt(np.asarray(prop.variance, float))[:2]
    rows = []
    for s_w, k_mode, k_p in zip(SC_SW_GRID, jax.random.split(k_modes, len(SC_SW_GRID)),
                                jax.random.split(k_prof, len(SC_SW_GRID))):
        z_star = dist.mode(k_mode, fixed={"sW": float(s_w)})
        values, vectors = dist.sensitivity(z_star)
        v1 = _signed(vectors[:, 0], 3, positive=False)  # negative hW element (the paper's choice)
        kk = jax.random.split(k_p, 3)
        along_v1 = _sc_profile(accuracy, kk[0], z_star, v1)
        along_task = _sc_profile(accuracy, kk[1], z_star, eigen_directions["task"])
        along_diag = _sc_profile(accuracy, kk[2], z_star, eigen_directions["diag"])
        centre = len(SC_STEPS) // 2
        p_a = along_v1[:, 1]
        rows.append({
            "sW": float(s_w), "mode": z_star.tolist(), "log_prob": float(dist.log_prob(z_star[None])[0]),
            "hessian_eigenvalues": values.tolist(), "sensitive_direction_v1": v1.tolist(),
            "accuracy_at_mode": along_v1[centre].tolist(),
            "along_v1": along_v1.tolist(), "along_task": along_task.tolist(), "along_diag": along_diag.tolist(),
            # regime 1 (paper): Anti accuracy falls on both sides of the mode along v1; regime 2: it rises
            # with Pro accuracy on one side
            "anti_drops_both_sides": bool(p_a[0] < p_a[centre] - 0.05 and p_a[-1] < p_a[centre] - 0.05),
            # a conditional mode where q has little mass need not show the property: regimes only among those
            # within two target stds of both accuracies
            "meets_property": bool(np.all(np.abs(along_v1[centre] - target) <= 2 * target_sd)),
        })
    v_first = np.asarray(rows[0]["sensitive_direction_v1"])
    for r in rows:  # how far the sensitivity dimension has turned from that at sW = 1
        r["cos_v1_to_first"] = float(abs(np.asarray(r["sensitive_direction_v1"]) @ v_first))
    samples = np.asarray(dist.sample(k_sample, 5000))
    result = {"steps": list(SC_STEPS), "modes": rows,
              "mass_sW_positive": float(np.mean(samples[:, 0] > 0)),
              "regime_1_sW": [r["sW"] for r in rows if r["meets_property"] and r["anti_drops_both_sides"]],
              "regime_2_sW": [r["sW"] for r in rows if r["meets_property"] and not r["anti_drops_both_sides"]],
              "modes_off_property_sW": [r["sW"] for r in rows if not r["meets_property"]],
              "corr_sW_hW": {"sW > 0": float(np.corrcoef(*samples[samples[:, 0] > 0][:, [0, 3]].T)[0, 1]),
                             "sW < 0": float(np.corrcoef(*samples[samples[:, 0] < 0][:, [0, 3]].T)[0, 1])}}
    plotting.sc_regimes(samples, rows, list(SC_STEPS), path=out / "sc_regimes.png")
    return result


@dataclass(frozen=True)
class Analysis:
    fits: tuple[Fit, ...]
    run: Callable
    description: str


ANALYSES = {
    "lds-contours": Analysis((Fit("lds-2d", "oscillation-1Hz"),), lds_contours,
                             "2-D LDS: EPI samples against the analytic contours of Re and Im of lambda1"),
    "v1-variability": Analysis((Fit("v1-ssn", "E-variability-5Hz"), Fit("v1-ssn", "E-variability-10Hz")),
                               v1_variability,
                               "V1 SSN: sigma_E^2 + sigma_P^2 fixes E variability (5 and 10 Hz); sigma_S, sigma_V free"),
    "sc-regimes": Analysis((Fit("sc-proanti", "accuracy-75"),), sc_regimes,
                           "SC Pro/Anti at 75% accuracy: conditional modes along sW, sensitivity dimensions and the "
                           "two regimes (Anti accuracy along v1, along the task and diag eigenmodes)"),
    "stg-sensitivity": Analysis((Fit("stg-hub", "hub-0.55Hz"),), stg_sensitivity,
                                "STG hub at 0.55 Hz: Hessian sensitive and robust directions at the mode "
                                "(published eigenvalues -10.7, -3.22) against the hub-frequency map"),
}


def choose_seed(runs: dict) -> int:
    """The seed whose fit EPI keeps: converged, then greatest entropy (``runs``: seed -> metrics)."""
    return max(runs, key=lambda k: (bool(runs[k]["converged"]), float(runs[k]["entropy"])))


def run_analysis(name: str, *, out, seed: int | Sequence[int] = 0, max_epochs: int | None = None,
                 progress: bool = True) -> dict:
    """Run analysis ``name`` (see ``ANALYSES``); fits and ``analysis.json`` + figure under ``out``.

    ``seed`` may be several seeds: each fit then runs once per seed (under ``out/seed-K``) and the converged
    fit of greatest entropy is analysed."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; choose one of {', '.join(ANALYSES)}")
    seeds = [int(seed)] if np.ndim(seed) == 0 else [int(k) for k in seed]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}; give each seed once "
                         "(CLI: --seed 1 --seed 2; Python: seed=[1, 2])")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    analysis = ANALYSES[name]
    fits, per_seed = {}, {}
    for f in analysis.fits:
        runs = {k: fit_or_load(f, out if len(seeds) == 1 else out / f"seed-{k}", seed=k, max_epochs=max_epochs,
                               progress=progress) for k in seeds}
        chosen = choose_seed({k: m for k, (_, _, m) in runs.items()})
        fits[f.folder] = runs[chosen]
        per_seed[f.folder] = {"chosen_seed": chosen, **{
            str(k): {"converged": m["converged"], "epoch": m["epoch"], "entropy": m["entropy"],
                     "p_values": m["p_values"], "seconds": m["timings"]["total_s"]}
            for k, (_, _, m) in runs.items()}}
    result = {"analysis": name, "description": analysis.description, "seed": seeds[0] if len(seeds) == 1 else seeds,
              "fits": {k: {"converged": m["converged"], "p_values": m["p_values"], "epoch": m["epoch"],
                           "timings": m["timings"], "num_simulations": m["num_simulations"], "seed": m["seed"]}
                       for k, (_, _, m) in fits.items()},
              **({"seeds": per_seed} if len(seeds) > 1 else {}),
              **analysis.run(fits, out, jax.random.key(seeds[0] + 1))}
    (out / "analysis.json").write_text(json.dumps(result, indent=1))
    return result
