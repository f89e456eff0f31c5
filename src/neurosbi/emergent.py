"""Run emergent property inference on a model and write what a user looks at: ``neurosbi epi``.

``run_epi`` fits EPI with the model's published settings (``model.epi_defaults``, overridable), then
writes ``metrics.json`` (converged, per-constraint p-values, entropy, epochs, simulations, timings, the
mode and the Hessian's extreme eigenvalues there), the distribution (``distribution/``, reloadable with
``neurosbi.inference.load_epi``), samples as NetCDF (ArviZ) and three figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from . import plotting
from .inference import EPIConfig, FlowSpec, fit_epi, to_inference_data
from .inference.epi import predictive_statistics
from .models import Model, with_emergent_property

NUM_SAMPLES = 5000


def epi_config_for(model: Model, **overrides) -> EPIConfig:
    """The ``EPIConfig`` of ``model.epi_defaults`` (the paper's settings) with ``overrides`` (None ignored)."""
    settings = dict(getattr(model, "epi_defaults", {}))
    settings.update({k: v for k, v in overrides.items() if v is not None})
    units = settings.pop("hidden_units", 50)
    return EPIConfig(**settings, flow=FlowSpec(hidden_units=units))


def emergent_property_of(model: Model, name: str | None = None):
    """``model``'s emergent property ``name`` (its default when None), or a clear error."""
    if not hasattr(model, "emergent_property"):
        raise ValueError(f"model {model.name!r} declares no emergent property; EPI models: "
                         f"{', '.join(with_emergent_property())}")
    return model.emergent_property() if name is None else model.emergent_property(name)


def run_epi(model: Model, *, out, prop=None, seed: int = 0, config: EPIConfig | None = None,
            progress: bool = True) -> dict:
    """EPI on ``model`` for ``prop`` (default: its published property); outputs under ``out``."""
    out = Path(out)
    prop = prop or emergent_property_of(model)
    config = config or epi_config_for(model)
    key_fit, key_sample, key_mode, key_stats = jax.random.split(jax.random.key(seed), 4)
    dist = fit_epi(model, prop, key=key_fit, config=config, progress=progress)
    dist.save(out / "distribution")
    samples = np.asarray(dist.sample(key_sample, NUM_SAMPLES))
    mode = dist.mode(key_mode)
    values, vectors = dist.sensitivity(mode)
    stats = predictive_statistics(prop, key_stats, samples, config.batch_size)
    info = dist.info
    metrics = {
        "model": model.name, "model_config": model.config(), "property": info["property"], "seed": seed,
        "converged": info["converged"], "epoch": info["epoch"], "epochs": info["history"]["epoch"][-1],
        "first_converged_epoch": info["first_converged_epoch"],
        "p_values": dict(zip(info["constraint_names"], info["p_values"])),
        "alpha_per_constraint": config.alpha / len(info["targets"]),
        "constraint_means": dict(zip(info["constraint_names"], info["constraint_means"])),
        "targets": dict(zip(info["constraint_names"], info["targets"])),
        "entropy": info["entropy"], "num_simulations": info["num_simulations"],
        "num_simulations_to_convergence": info["num_simulations_to_convergence"],
        "num_invalid": info["num_invalid"], "timings": info["timings"],
        "mode": dict(zip(model.param_names, mode.tolist())),
        "hessian_eigenvalues_at_mode": values.tolist() if len(values) <= 16 else
        {"most_sensitive": values[:4].tolist(), "most_robust": values[-4:].tolist()},
        "sensitive_direction": vectors[:, 0].tolist() if len(values) <= 16 else None,
        "robust_direction": vectors[:, -1].tolist() if len(values) <= 16 else None,
        "predictive_statistics": {n: {"mean": float(stats[:, i].mean()), "sd": float(stats[:, i].std())}
                                  for i, n in enumerate(prop.names)},
        "config": info["config"],
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    to_inference_data(samples, model.param_names).to_netcdf(out / "samples.nc")
    plotting.epi_pairplot(samples, model.param_names, mode=mode, vectors=vectors, values=values,
                          path=out / "pairplot.png", title=f"EPI: {model.name}, {prop.name}")
    plotting.epi_history(info["history"], info["constraint_names"], info["targets"], path=out / "history.png")
    plotting.epi_predictive(stats, prop.names, prop.mean, prop.variance, path=out / "predictive.png")
    return metrics
