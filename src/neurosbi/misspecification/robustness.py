"""Q2 of seed 000: how robust is inference when the data come from a perturbed model?

An amortized posterior is trained on a model (the MPR mean field, ``Montbrio``); observations are then
simulated at the same parameters, drawn once from the prior, by perturbed versions of it
(``models.perturbed.PerturbedMontbrio``: a change of functional form — adaptation, synaptic kinetics,
a Gaussian share in the distribution of excitabilities — or of the noise model — colored, multiplicative, observation noise, contamination) at increasing
strength. At each strength the sweep reports, over the observations:

- **bias**: the posterior mean's signed error per parameter and the RMSE over parameters, both in
  prior standard deviations;
- **coverage**: the share of truths inside the posterior's 90 % highest-density region (nominal 0.9
  when well specified) and the largest coverage error over all levels;
- **detection rate**: the share of observations the misspecification check (``diagnostics.Detector``,
  Bonferroni over its tests at ``alpha``) calls misspecified, and each test's rejection rate.

Strength 0 is the model the posterior was trained on (up to its noise scheme: the perturbed models
draw Gaussian increments, the trained one two-point increments of the same weak order), so the first
point of every curve is a well-specified check: coverage near nominal, detection near ``alpha``.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from .. import priors as _priors
from ..diagnostics.calibration import expected_coverage
from ..diagnostics.misspecification import Detector
from ..models.montbrio import Montbrio
from ..models.perturbed import PERTURBATIONS, PerturbedMontbrio

# Strengths of each perturbation (units in models.perturbed): from invisible to obvious for one 100 s
# recording of the MPR model at σ = 0.1.
DEFAULT_STRENGTHS: dict[str, tuple[float, ...]] = {
    "adaptation": (0.0, 0.1, 0.25, 0.5, 1.0),
    "synapse": (0.0, 0.005, 0.01, 0.02, 0.05),
    "colored": (0.0, 0.02, 0.05, 0.1, 0.2),
    "multiplicative": (0.0, 0.1, 0.25, 0.5, 1.0),
    "observation": (0.0, 0.01, 0.02, 0.05, 0.1),
    "contamination": (0.0, 0.0001, 0.0003, 0.001, 0.005),
    "heterogeneity": (0.0, 0.05, 0.1, 0.25, 1.0),
}
COVERAGE_LEVEL = 0.9


def sweep_point(posterior, detector: Detector, model, truths, key, *, alpha: float = 0.05,
                num_samples: int = 500, batch: int = 100) -> dict:
    """Bias, coverage and detection rate of ``posterior`` on observations simulated by ``model`` at
    ``truths [m, dim]`` (module docstring). Invalid (NaN) simulations are counted, not used."""
    k_sim, k_draw, k_cov, k_test = jax.random.split(key, 4)
    truths = np.asarray(truths, np.float32)
    x = np.concatenate([np.asarray(model.simulate_features(jax.random.fold_in(k_sim, i),
                                                           jnp.asarray(truths[i:i + batch])))
                        for i in range(0, len(truths), batch)])
    ok = np.all(np.isfinite(x), axis=1)
    theta, x = truths[ok], x[ok]
    names = list(posterior.param_names)
    record = {"num_observations": int(len(truths)), "num_invalid": int((~ok).sum())}
    if len(theta) == 0:
        return {**record, "bias": dict.fromkeys(names, float("nan")), "rmse": float("nan"),
                "coverage": float("nan"), "coverage_error": float("nan"), "detection_rate": float("nan"),
                "rejection_rate": {}}
    sd = np.sqrt(np.asarray(_priors.variance(model.prior), np.float64))
    # a posterior with under 1 % of its mass in the prior box is counted as failed, not sampled for minutes
    max_draws = 100 * num_samples
    draws = np.asarray(posterior.sample_batch(k_draw, num_samples, jnp.asarray(x), max_draws=max_draws), np.float64)
    failed = np.isnan(draws).any(axis=(1, 2))
    err = (draws[~failed].mean(axis=1) - theta[~failed]) / sd
    cov = expected_coverage(posterior, theta, x, k_cov, num_samples=num_samples, max_draws=max_draws)
    level = int(np.argmin(np.abs(cov["levels"] - COVERAGE_LEVEL)))
    pvalues, test_names = [], None
    for i, xi in enumerate(x):
        tests = detector.tests(xi, jax.random.fold_in(k_test, i))
        test_names = test_names or [f"{t.name}[{t.space}]" for t in tests]
        pvalues.append([t.pvalue for t in tests])
    pvalues = np.asarray(pvalues)
    adjusted = np.minimum(1.0, pvalues.shape[1] * pvalues.min(axis=1))  # the Bonferroni verdict of Detector.check
    return {
        **record,
        "bias": dict(zip(names, err.mean(axis=0).tolist() if len(err) else [float("nan")] * len(names))),
        "rmse": float(np.sqrt(np.mean(err**2))) if len(err) else float("nan"),
        "coverage": float(cov["joint"][level]),
        "coverage_level": float(cov["levels"][level]),
        "coverage_error": float(np.max(np.abs(cov["joint"] - cov["levels"]))),
        "num_failed_posteriors": int(cov["num_failed"]),  # counted as not covering; left out of bias and RMSE
        "detection_rate": float(np.mean(adjusted < alpha)),
        "rejection_rate": dict(zip(test_names, np.mean(pvalues < alpha, axis=0).tolist())),
    }


def robustness_study(*, out, model: Montbrio | None = None, strengths: dict | None = None,
                     num_simulations: int = 20_000, num_observations: int = 100, seed: int = 0,
                     alpha: float = 0.05, progress: bool = True) -> dict:
    """Train on ``model`` (default ``Montbrio()``), sweep every perturbation of ``strengths`` (default
    ``DEFAULT_STRENGTHS``) and write ``out/robustness.json`` and ``out/robustness.png``.

    Resumable: the bank and the posterior are reused (``workflow.amortized_posterior``) and each finished
    point of the sweep is written at once; running the same command again computes only what is missing.
    """
    from .. import plotting
    from ..workflow import _json_default, amortized_posterior, console, prepare_output

    model = Montbrio() if model is None else model
    if type(model) is not Montbrio:
        raise ValueError(f"the robustness sweep perturbs the MPR model (Montbrio); got {model.name}")
    strengths = dict(DEFAULT_STRENGTHS if strengths is None else strengths)
    unknown = sorted(set(strengths) - set(PERTURBATIONS))
    if unknown:
        raise ValueError(f"unknown perturbations {unknown}; choose from {list(PERTURBATIONS)}")
    if num_observations < 10:
        raise ValueError(f"num_observations must be >= 10 for rates to mean anything, got {num_observations}")
    out = prepare_output(out)
    t0 = time.perf_counter()
    posterior, bank, held_out = amortized_posterior(model, out=out, num_simulations=num_simulations, seed=seed,
                                                    progress=progress)
    key = jax.random.fold_in(jax.random.key(seed), 11)
    k_det, k_truth, k_sweep = jax.random.split(key, 3)
    detector = Detector(bank.x, k_det, posterior=posterior, x_embedding=bank.x[held_out], progress=progress)
    truths = np.asarray(model.prior.sample(k_truth, (num_observations,)))
    settings = {"model_config": json.loads(json.dumps(model.config(), default=str)), "seed": seed,
                "num_simulations": len(bank), "num_observations": num_observations, "alpha": alpha}
    path = out / "robustness.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    if record.get("settings") != settings:
        record = {"settings": settings, "points": {}}
    todo = [(kind, s) for kind, grid in strengths.items() for s in grid
            if not any(p["strength"] == s for p in record["points"].get(kind, []))]
    from rich.progress import Progress

    with Progress(disable=not progress, console=console, transient=True) as bar:
        task = bar.add_task("robustness sweep", total=len(todo))
        for kind, s in todo:
            perturbed = PerturbedMontbrio(**model.config(), perturbation=kind, strength=float(s))
            k = jax.random.fold_in(jax.random.fold_in(k_sweep, PERTURBATIONS.index(kind)), int(s * 1e6))
            point = {"strength": float(s), **sweep_point(posterior, detector, perturbed, truths, k, alpha=alpha)}
            points = record["points"].setdefault(kind, [])
            points.append(point)
            points.sort(key=lambda p: p["strength"])
            path.write_text(json.dumps(record, indent=2, default=_json_default))
            bar.advance(task)
    record["param_names"] = list(model.param_names)
    record["detector_notes"] = detector.notes
    record["seconds_this_run"] = time.perf_counter() - t0
    path.write_text(json.dumps(record, indent=2, default=_json_default))
    plotting.robustness(record, path=out / "robustness.png")
    return record
