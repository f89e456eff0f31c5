"""Q3 of seed 000: can a detailed model's known joint distribution give a simplified model its prior?

The detailed model (default: the QIF spiking network, ``QIFNetwork``, finite N with sampled Cauchy
excitabilities) has a known joint distribution of its parameters, a *population* (default: a Gaussian
around the published truth, truncated to the box, ``population_sd`` of each box width). The simplified
model is the MPR mean field (``Montbrio``, σ inferred). Transfer:

1. simulate ``num_fit`` detailed datasets from the population;
2. fit the simplified model to each with its amortized NPE (trained once on its box prior);
3. fit a flow to the pooled posterior draws (the aggregate posterior: where the simplified model's
   parameters land on the detailed model's data, misfit included) — the **learned prior**.

On ``num_test`` new detailed datasets the study compares three priors for the simplified model: its box
prior; the population itself read on the shared parameters (**naive transfer**, which assumes the
simplified model's parameters mean the detailed model's); and the learned prior. A posterior under a new
prior p̃ is the box-prior NPE posterior reweighted by p̃ (importance weights, inside the box the box
prior is constant), so no network is retrained; the effective sample size is reported. Metrics on the
shared parameters against the detailed model's true values: RMSE of the posterior mean and mean
posterior sd (prior sds), coverage of the 90 % central intervals; and, model-free, the posterior
predictive error (simulated features at posterior draws against the observed ones, in feature sds).
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from .. import priors as _priors
from ..inference.density import fit_density
from ..models.montbrio import Montbrio
from ..models.qif_network import QIFNetwork
from ..simulate import simulate

PRIORS = ("box", "naive", "learned")


def _weighted_stats(draws, weights, truth, level: float = 0.9):
    """Weighted mean, sd and whether each truth lies in the central ``level`` interval, per parameter."""
    w = weights / weights.sum()
    mean = w @ draws
    sd = np.sqrt(np.maximum(w @ (draws - mean) ** 2, 0.0))
    inside = []
    for j in range(draws.shape[1]):
        order = np.argsort(draws[:, j])
        cdf = np.cumsum(w[order])
        lo = draws[order, j][np.searchsorted(cdf, (1 - level) / 2)]
        hi = draws[order, j][min(np.searchsorted(cdf, (1 + level) / 2), len(cdf) - 1)]
        inside.append(lo <= truth[j] <= hi)
    return mean, sd, np.asarray(inside)


def population_prior(model, truth, sd_fraction: float):
    """Gaussian around ``truth`` with sd ``sd_fraction`` of each box width (sampled inside the box)."""
    low, high = _priors.bounds(model.prior)
    return _priors.gaussian(jnp.asarray(truth, jnp.float32), jnp.asarray(sd_fraction * (high - low), jnp.float32))


def _sample_in_box(dist, key, n, low, high):
    out, k = [], 0
    while sum(len(o) for o in out) < n:
        draw = np.asarray(dist.sample(jax.random.fold_in(key, k), (4 * n,)))
        out.append(draw[np.all((draw >= low) & (draw <= high), axis=1)])
        k += 1
    return np.concatenate(out)[:n]


def prior_transfer_study(*, out, detailed: QIFNetwork | None = None, population_sd: float = 0.1,
                         num_fit: int = 400, num_test: int = 100, num_simulations: int = 20_000,
                         num_draws: int = 2000, num_predictive: int = 20, seed: int = 0,
                         progress: bool = True) -> dict:
    """Learn the MPR model's prior from ``detailed`` data and test it on new detailed data (module
    docstring); writes ``out/prior_transfer.json`` and ``out/prior_transfer.png``.

    Args:
        detailed: the detailed model (default ``QIFNetwork(n_neurons=1000, heterogeneity="random")``);
            its parameters are the simplified model's first ones (Δ, η, J) and its protocol is shared.
        population_sd: sd of the population around the published truth, as a fraction of the box width.
        num_fit, num_test: detailed datasets to learn the prior from, and to test it on.
        num_simulations: simulations of the simplified model for its NPE (resumable bank).
        num_draws: posterior draws per dataset.
        num_predictive: posterior-predictive simulations per test dataset and prior.
    """
    from .. import plotting
    from ..workflow import _json_default, amortized_posterior, prepare_output

    detailed = QIFNetwork(n_neurons=1000, heterogeneity="random") if detailed is None else detailed
    if not 0 < population_sd <= 0.5:
        raise ValueError(f"population_sd is a fraction of the box width in (0, 0.5], got {population_sd}")
    if num_fit < 50 or num_test < 10:
        raise ValueError(f"need num_fit >= 50 and num_test >= 10 detailed datasets, got {num_fit} and {num_test}")
    out = prepare_output(out)
    t0 = time.perf_counter()
    simple = Montbrio(**{**detailed.mean_field().config(), "noise_sigma": 0.1, "infer_sigma": True})
    shared = list(detailed.param_names)
    k = len(shared)
    key = jax.random.fold_in(jax.random.key(seed), 17)
    k_pop, k_sim, k_fit_draw, k_flow, k_test_draw, k_pred, k_resample = jax.random.split(key, 7)

    low, high = (np.asarray(b) for b in _priors.bounds(detailed.prior))
    population = population_prior(detailed, detailed.default_truth, population_sd)
    phi = _sample_in_box(population, k_pop, num_fit + num_test, low, high)
    x = simulate(detailed, len(phi), k_sim, theta=phi, path=out / "detailed.zarr", chunk_size=20,
                 progress=progress).x  # a resumable bank: an interrupted run keeps its network datasets
    ok = np.all(np.isfinite(x), axis=1)
    fit_idx = np.flatnonzero(ok[:num_fit])
    test_idx = num_fit + np.flatnonzero(ok[num_fit:])

    posterior, _, _ = amortized_posterior(simple, out=out, num_simulations=num_simulations, seed=seed,
                                          progress=progress)
    fit_draws = np.asarray(posterior.sample_batch(k_fit_draw, 25, jnp.asarray(x[fit_idx])))
    fit_draws = fit_draws.reshape(-1, len(simple.param_names))
    fit_draws = fit_draws[np.all(np.isfinite(fit_draws), axis=1)]
    learned, _ = fit_density(fit_draws, key=k_flow, progress=progress)

    sd_box = np.sqrt(np.asarray(_priors.variance(simple.prior), np.float64))
    draws = np.asarray(posterior.sample_batch(k_test_draw, num_draws, jnp.asarray(x[test_idx])), np.float64)
    x_sd = np.nanstd(x[fit_idx], axis=0) + 1e-9
    results = {p: {"err": [], "sd": [], "inside": [], "ess": [], "predictive": []} for p in PRIORS}
    run = jax.jit(simple.simulate_features)
    num_failed = 0
    for i, (d, xi, truth) in enumerate(zip(draws, x[test_idx], phi[test_idx])):
        d = d[np.all(np.isfinite(d), axis=1)]
        if len(d) == 0:  # no posterior mass in the prior box: counted, no prior can reweight it
            num_failed += 1
            continue
        log_w = {"box": np.zeros(len(d)),
                 "naive": np.asarray(population.log_prob(jnp.asarray(d[:, :k], jnp.float32)), np.float64),
                 "learned": np.asarray(learned.log_prob(jnp.asarray(d, jnp.float32)), np.float64)}
        for p in PRIORS:
            lw = np.where(np.isfinite(log_w[p]), log_w[p], -np.inf)
            w = np.exp(lw - lw.max()) if np.isfinite(lw.max()) else np.ones(len(d))
            mean, sd, inside = _weighted_stats(d[:, :k], w, truth)
            r = results[p]
            r["err"].append((mean - truth) / sd_box[:k])
            r["sd"].append(sd / sd_box[:k])
            r["inside"].append(inside)
            r["ess"].append(w.sum() ** 2 / (w**2).sum())
            pick = np.asarray(jax.random.choice(jax.random.fold_in(k_resample, i), len(d), (num_predictive,),
                                                p=jnp.asarray(w / w.sum())))
            sims = np.asarray(run(jax.random.fold_in(k_pred, i), jnp.asarray(d[pick], jnp.float32)))
            r["predictive"].append(float(np.nanmedian(np.abs(sims - xi) / x_sd)))
    summary = {}
    for p in PRIORS:
        r = {name: np.asarray(v) for name, v in results[p].items()}
        summary[p] = {
            "rmse": float(np.sqrt(np.mean(r["err"] ** 2))),
            "rmse_per_parameter": dict(zip(shared, np.sqrt(np.mean(r["err"] ** 2, axis=0)).tolist())),
            "bias_per_parameter": dict(zip(shared, r["err"].mean(0).tolist())),
            "posterior_sd": float(r["sd"].mean()),
            "coverage_90": float(r["inside"].mean()),
            "coverage_90_per_parameter": dict(zip(shared, r["inside"].mean(0).tolist())),
            "median_ess": float(np.median(r["ess"])),
            "predictive_error": float(np.median(r["predictive"])),
        }
    record = {
        "settings": {"detailed": detailed.name, "detailed_config": json.loads(json.dumps(detailed.config(), default=str)),
                     "simplified": simple.name, "population_sd": population_sd, "num_fit": num_fit,
                     "num_test": num_test, "num_simulations": num_simulations, "num_draws": num_draws, "seed": seed},
        "shared_parameters": shared, "truth_centre": dict(zip(shared, np.asarray(detailed.default_truth).tolist())),
        "num_invalid_detailed": int((~ok).sum()), "num_failed_posteriors": num_failed, "priors": summary,
        "learned_prior_mean": dict(zip(simple.param_names, fit_draws.mean(0).tolist())),
        "learned_prior_sd": dict(zip(simple.param_names, fit_draws.std(0).tolist())),
        "seconds": time.perf_counter() - t0,
    }
    (out / "prior_transfer.json").write_text(json.dumps(record, indent=2, default=_json_default))
    pop_draws = _sample_in_box(population, jax.random.fold_in(k_pop, 1), 3000, low, high)
    plotting.prior_transfer(record, {"population (naive)": pop_draws, "learned": fit_draws[:3000, :k]},
                            path=out / "prior_transfer.png", box=(low, high))
    return record
