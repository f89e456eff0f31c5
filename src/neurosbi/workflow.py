"""``infer``: the whole NPE job on one model and one observation, with its outputs.

model → simulations (a resumable bank) → posterior → diagnostics → metrics.json, NetCDF samples,
figures and report.html. The CLI's ``neurosbi infer`` is a thin wrapper around this function.
With ``rounds > 1`` the simulations are spent in rounds focused on the observation (sequential NPE,
``neurosbi.inference.sequential_npe``); the posterior is then valid at that observation only, so
the expected-coverage check over held-out prior simulations is not run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.markup import escape

from . import plotting
from . import priors as _priors
from ._errors import BankError, ObservationError, ShapeError
from .diagnostics import (
    closeness,
    conditional_correlations,
    coverage_error,
    expected_coverage,
    feature_predictive,
    high_probability_path,
    posterior_predictive,
    sensitivity,
    zscore_shrinkage,
)
from .diagnostics.misspecification import check_observation
from .inference import (
    NPEConfig,
    feature_mlp,
    fit_npe,
    fit_npe_rs,
    fit_npe_stream,
    fit_temperature,
    load_posterior,
    sequential_npe,
    to_inference_data,
    trace_cnn,
)
from .inference.npe import MMD_WEIGHT
from .inference.snpe import RESTRICT_KEEP
from .models import Model, RawTraces, simulate_traces
from .report import write_check_report, write_report
from .simulate import DEFAULT_CHUNK, load_bank, prepare_output, simulate

console = Console(stderr=True)


STREAM_HELD_OUT = 20_000  # rows at least a streamed infer holds out (calibration, coverage, model check)


def _check_bank(meta: dict, model: Model, path) -> None:
    if meta["model"] != model.name or meta.get("feature_names") != list(model.feature_names):
        raise BankError(
            f"the bank at {path} holds {meta['model']} with {len(meta['feature_names'])} features, "
            f"this run needs {model.name} with {len(model.feature_names)}"
        )


def _held_out_chunks(path, model: Model, needed: int):
    """For a streamed infer: the bank's last whole chunks (``STREAM_HELD_OUT`` rows, or ``needed``, at least)
    read into a ``Bank``, the source of the other chunks to train on, and the bank's number of simulations."""
    from .inference.stream import BankSource
    from .simulate import Bank

    source = BankSource(path)
    _check_bank(source.meta[0], model, path)
    n, chunk = int(source.meta[0]["num_simulations"]), source.chunk_size
    size = sum(min((i + 1) * chunk, n) - i * chunk for _, i in source.chunks)
    rows = max(STREAM_HELD_OUT, needed)
    held = max(-(-rows // source.chunk_size), 1)
    if held > len(source.chunks) // 2:
        raise BankError(f"the bank at {path} holds {len(source.chunks)} chunks; a streamed training holds out "
                        f"{held} of them ({rows} simulations) and needs at least as many to train on: "
                        "stream only banks larger than memory, train smaller ones in memory (without --stream)")
    held_chunks, source.chunks = source.chunks[-held:], source.chunks[:-held]
    theta, x = source.read_many(held_chunks)
    bank = Bank(np.asarray(theta), np.asarray(x), np.all(np.isfinite(x), axis=1), tuple(model.param_names),
                tuple(model.feature_names), {"held_out_chunks": held})
    return bank, source, size


def npe_config_for(model: Model, **overrides) -> NPEConfig:
    """The ``NPEConfig`` a model asks for in ``model.infer_defaults`` (``flow``; ``log_features`` by
    feature name), with ``overrides`` (``None`` values ignored) on top."""
    defaults = {k: v for k, v in model.infer_defaults.items() if k in ("flow", "log_features")}
    defaults.update({k: v for k, v in overrides.items() if v is not None})
    names = list(model.feature_names)
    logs = defaults.get("log_features", ())
    if any(f not in names for f in logs if isinstance(f, str)):
        raise ValueError(f"log_features {logs} name features {model.name} does not have: {names}")
    defaults["log_features"] = tuple(names.index(f) if isinstance(f, str) else int(f) for f in logs)
    return NPEConfig(**defaults)


def resolve_observation(model: Model, key, *, traces=None, features=None, truth=None):
    """The observation of a job, first that applies: ``traces`` [channels, time] (their features computed
    by the model); ``features``; the model's published recorded observation (unless a ``truth`` is
    given); a simulation with ``key`` at ``truth`` or the model's published truth.

    Returns:
        ``(traces or None, x_o, truth or None)``, each checked against the model.
    """
    truth = None if truth is None else model.check_theta(truth, name="truth")[0]
    if traces is None and features is None and truth is None and model.observation is not None:
        features = model.observation
    if traces is None and features is None:
        truth = model.default_truth if truth is None else truth
        if truth is None:
            raise ValueError(f"{model.name} has no published observation or truth: pass truth=..., observed traces "
                             "or features")
        truth = model.check_theta(truth, name="truth")[0]
        traces = np.asarray(simulate_traces(model, key, jnp.asarray(truth[None], jnp.float32)))[0]
    if traces is not None:
        traces = model.check_traces(traces)[0]
        features = np.asarray(model.features(jnp.asarray(traces[None], jnp.float32)))[0]
    return traces, model.check_observation(features), truth


def infer(
    model: Model,
    *,
    out,
    num_simulations: int = 10_000,
    seed: int = 0,
    truth=None,
    observed_traces=None,
    observed_features=None,
    bank_path=None,
    config: NPEConfig | None = None,
    num_posterior_samples: int = 10_000,
    num_coverage_tests: int = 200,
    num_calibration: int = 1000,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    rounds: int = 1,
    method: str = "tsnpe",
    analysis: bool = True,
    embedding: str | None = None,
    trace_every: int = 10,
    check: bool = True,
    alpha: float = 0.05,
    robust: str | None = None,
    stream: bool = False,
) -> dict:
    """Infer the parameters of ``model`` from one observation and write every output to ``out``.

    The observation, first that applies: ``observed_traces [channels, time]``; ``observed_features``
    (a feature vector, e.g. measured from a recording by the published rules); a simulation at
    ``truth``; the model's published recorded observation (``model.observation``, e.g. pyloric prep
    845_082_0044); a simulation at the model's published ground truth. Without traces the posterior
    predictive check is made on the features alone.

    ``analysis`` adds the posterior analysis (conditional correlations, a high-probability path
    between two posterior samples with the activity along it, and the activity after moving the
    posterior mode along its most sensitive and most robust directions), with three figures.

    ``rounds`` > 1 spends ``num_simulations`` in that many equal rounds with ``method``
    (``"tsnpe"`` or ``"apt"``); when many simulations are invalid, later rounds are proposed only
    where a classifier predicts valid features (``sequential_npe(..., restrict=True)``).

    ``embedding="cnn"`` learns the summary instead of using the model's features: the simulations
    keep every ``trace_every``-th sample of the traces (``RawTraces``) and a causal 1-D CNN
    (``trace_cnn``) is trained together with the flow.

    Amortized runs (``rounds == 1``) hold out ``num_calibration`` simulations (at most a tenth of the
    bank; 0 turns it off) to fit the temperature of the posterior's base distribution
    (``inference.fit_temperature``: one scalar that widens or sharpens every credible region so that
    coverage on those simulations is nominal), and ``num_coverage_tests`` further ones on which the
    coverage is then reported: the two never overlap.

    ``robust="npe-rs"`` makes the posterior robust to misspecification of this observation
    (``inference.fit_npe_rs``): the NPE learns a summary (an MLP on the features, or the CNN with
    ``embedding="cnn"``) and is then fine-tuned so that the observation's summary lies among the
    simulations'. The robust posterior is for this observation only: no temperature is fitted, and
    the coverage reported is the NPE's before the fine-tune; ``metrics["robust"]`` says how far the
    fine-tune moved each parameter, in the NPE's posterior standard deviations. One round only.

    ``check`` (on by default) tests whether any parameter of the model can explain the observation
    (``diagnostics.misspecification.check_observation`` at level ``alpha``, on the prior-predictive
    simulations: the amortized bank, or the first round of a sequential run) and writes the verdict,
    p-values and per-feature table into ``metrics["misspecification"]``, the report and
    ``misspecification.png``; a misspecified verdict is also printed as a warning.

    ``stream=True`` never holds the bank in memory (a campaign larger than memory, or one simulated with
    ``neurosbi simulate``): the bank stays on disk (``simulate(load=False)``), the posterior trains by
    streaming minibatches from it (``inference.fit_npe_stream``), and whole chunks at the bank's end
    (``STREAM_HELD_OUT`` rows at least) are held out instead: the calibration and coverage simulations come
    from them, and they stand for the bank in the model check and the feature scale. One round, features
    only (no embedding net, no NPE-RS).

    Returns:
        The metrics dictionary written to ``out/metrics.json``.
    """
    if stream and (rounds > 1 or embedding is not None or robust is not None):
        raise ValueError("stream=True trains one amortized posterior on the model's features: leave rounds at 1 "
                         "and embedding and robust unset")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if num_calibration < 0 or num_coverage_tests < 1:
        raise ValueError(f"num_calibration must be >= 0 and num_coverage_tests >= 1, got {num_calibration} "
                         f"and {num_coverage_tests}")
    if config is None:
        config = npe_config_for(model) if embedding is None else NPEConfig(flow=model.infer_defaults.get("flow", "maf"))
    if rounds > 1 and bank_path is not None:
        raise ValueError("--from-bank trains once from an existing bank; it cannot be combined with rounds > 1")
    if robust not in (None, "npe-rs"):
        raise ValueError(f"robust must be 'npe-rs' (MMD-regularised NPE), got {robust!r}")
    if robust is not None and rounds > 1:
        raise ValueError("robust inference (npe-rs) trains one round: use rounds=1")
    net = None
    if embedding is not None:
        if embedding != "cnn":
            raise ValueError(f"embedding must be 'cnn' (a 1-D CNN on the traces), got {embedding!r}")
        if observed_features is not None or (observed_traces is None and truth is None and model.observation is not None):
            raise ValueError("an embedding net reads traces: pass observed traces or a truth to simulate, "
                             "not a feature vector")
        model = model if isinstance(model, RawTraces) else RawTraces(model, every=trace_every)
        widths, length = (8, 16, 32), model.samples_per_channel
        while len(widths) > 1 and length // 4 ** len(widths) < 8:  # keep >= 8 positions after the strides
            widths = widths[:-1]
        net = trace_cnn(jax.random.fold_in(jax.random.key(seed), 99), channels=len(model.channel_names),
                        length=length, widths=widths)
    t_start = time.perf_counter()
    out = prepare_output(out)
    key = jax.random.key(seed)
    k_obs, k_bank, k_train, k_sample, k_cov, k_ppc = jax.random.split(key, 6)

    observed_traces, x_o, truth = resolve_observation(model, k_obs, traces=observed_traces,
                                                      features=observed_features, truth=truth)
    if robust is not None and net is None:  # NPE-RS regularises a learned summary: one of the features
        n_features = len(model.feature_names)
        net = feature_mlp(jax.random.fold_in(jax.random.key(seed), 98), features=n_features,
                          out_features=min(8, n_features))

    # -- simulations and training -------------------------------------------------------------
    sequential, temperature = None, None
    if rounds > 1:
        sequential = sequential_npe(
            model, x_o, key=k_bank, rounds=rounds, simulations_per_round=max(num_simulations // rounds, 1),
            method=method, config=config, chunk_size=chunk_size, progress=progress, embedding=net, restrict=True,
            restrict_keep=model.infer_defaults.get("restrict_keep", RESTRICT_KEEP),
            bank_dir=out / "banks",
        )
        posterior, history = sequential.posterior, sequential.history
        simulate_s = sum(r.simulate_s for r in sequential.rounds)
        train_s = sum(r.train_s for r in sequential.rounds)
        num_sims, num_invalid, sim_stats = len(sequential.theta), int((~sequential.valid).sum()), {}
        num_screened = sum(r.num_screened for r in sequential.rounds)
    else:
        t0 = time.perf_counter()
        if bank_path is not None and not stream:
            bank, meta = load_bank(bank_path)
            _check_bank(meta, model, bank_path)
        elif bank_path is None:
            bank = simulate(model, num_simulations, k_bank, path=out / "bank.zarr", chunk_size=chunk_size,
                            progress=progress, load=not stream)
        simulate_s = time.perf_counter() - t0
        sim_stats = bank.stats if bank_path is None or not stream else {}
        if stream:
            bank, source, bank_size = _held_out_chunks(bank_path or out / "bank.zarr", model,
                                                       num_coverage_tests + num_calibration)
        if bank.num_invalid:
            console.print(f"[yellow]{bank.num_invalid} of {len(bank)} simulations gave NaN/inf features; "
                          "excluded from training")
        n_test = min(num_coverage_tests, max(len(bank) // 10, 1))
        n_cal = min(num_calibration, len(bank) // 10)
        n_train = len(bank) - n_test - n_cal
        train_idx, cal_idx = np.arange(n_train), np.arange(n_train, n_train + n_cal)
        test_idx = np.arange(n_train + n_cal, len(bank))
        t0 = time.perf_counter()
        if stream:  # every chunk but the held-out ones, streamed from disk
            posterior, history = fit_npe_stream(source, model.prior, key=k_train, config=config,
                                                param_names=model.param_names, progress=progress)
        else:
            posterior, history = fit_npe(
                bank.theta[train_idx], bank.x[train_idx], model.prior, key=k_train, config=config,
                param_names=model.param_names, valid=bank.valid[train_idx], progress=progress, embedding=net,
            )
        npe_posterior = posterior
        if robust is not None:
            posterior, history, _ = fit_npe_rs(
                bank.theta[train_idx], bank.x[train_idx], model.prior, x_o, key=jax.random.fold_in(k_train, 1),
                init=npe_posterior, param_names=model.param_names, valid=bank.valid[train_idx], progress=progress)
        train_s = time.perf_counter() - t0
        num_sims, num_invalid = len(bank), bank.num_invalid
        if stream:
            num_sims, num_invalid = bank_size, bank.num_invalid + history.num_invalid_dropped
        num_screened = bank.num_screened
        cal_ok = cal_idx[bank.valid[cal_idx]]
        if len(cal_ok) >= 50 and robust is None:
            t0 = time.perf_counter()
            posterior, temperature = fit_temperature(posterior, bank.theta[cal_ok], bank.x[cal_ok],
                                                     jax.random.fold_in(k_cov, 1))
            temperature["fit_s"] = time.perf_counter() - t0
            console.print(f"posterior temperature {temperature['temperature']:.3f} (coverage error on "
                          f"{len(cal_ok)} held-out simulations {temperature['calibration_error_at_1']:.3f} "
                          f"-> {temperature['calibration_error']:.3f})")

    t0 = time.perf_counter()
    samples = np.asarray(posterior.sample(k_sample, num_posterior_samples, jnp.asarray(x_o)))
    sample_s = time.perf_counter() - t0

    # -- diagnostics ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    names = model.param_names
    mean, std = samples.mean(0), samples.std(0)
    metrics: dict = {
        "model": model.name,
        "model_config": json.loads(json.dumps(model.config(), default=str)),
        "param_names": list(names),
        "seed": seed,
        "num_simulations": num_sims,
        "num_invalid_simulations": num_invalid,
        "num_screened_simulations": num_screened,
        "rounds": 1 if sequential is None else sequential.as_dict()["rounds"],
        "posterior_mean": dict(zip(names, mean.tolist())),
        "posterior_std": dict(zip(names, std.tolist())),
        "posterior_median": dict(zip(names, np.median(samples, 0).tolist())),
        "true_params": None if truth is None else dict(zip(names, truth.tolist())),
        "training": {k: v for k, v in history.as_dict().items()
                     if k not in ("train_loss", "validation_loss", "epoch_seconds")},
        "temperature": temperature,
    }
    metrics["training"]["final_validation_loss"] = history.validation_loss[history.best_epoch]
    if truth is not None:
        zs = zscore_shrinkage(samples, truth, model.prior)
        metrics["z_score"] = dict(zip(names, zs["z_score"].tolist()))
        metrics["shrinkage"] = dict(zip(names, zs["shrinkage"].tolist()))
        metrics["rmse_posterior_mean"] = float(np.sqrt(np.mean((mean - truth) ** 2)))
    else:
        metrics["z_score"] = metrics["shrinkage"] = dict.fromkeys(names, float("nan"))
        metrics["rmse_posterior_mean"] = float("nan")

    cov = None
    if robust is not None:
        npe_samples = np.asarray(npe_posterior.sample(k_sample, num_posterior_samples, jnp.asarray(x_o)))
        metrics["robust"] = {
            "method": "npe-rs", "mmd_weight": MMD_WEIGHT,
            "npe_posterior_mean": dict(zip(names, npe_samples.mean(0).tolist())),
            "npe_posterior_std": dict(zip(names, npe_samples.std(0).tolist())),
            "shift_in_npe_std": dict(zip(names, ((mean - npe_samples.mean(0)) / npe_samples.std(0)).tolist())),
            "coverage_of": "the NPE before the robust fine-tune (the robust posterior is for this observation only)",
        }
    if sequential is None:
        test_ok = bank.valid[test_idx]
        cov = expected_coverage(npe_posterior, bank.theta[test_idx][test_ok], bank.x[test_idx][test_ok], k_cov)
        metrics["coverage"] = {
            "levels": cov["levels"].tolist(),
            "joint": cov["joint"].tolist(),
            "marginal": {n: cov["marginal"][i].tolist() for i, n in enumerate(names)},
            "num_tests": cov["num_tests"],
            "num_failed": cov["num_failed"],
            "max_error": coverage_error(cov),
        }
    else:  # a sequential posterior is trained for x_o only: coverage over prior draws does not apply
        metrics["coverage"] = {"max_error": float("nan"), "not_applicable": "sequential posterior (rounds > 1)"}
    train_x = bank.x[bank.valid] if sequential is None else sequential.x[sequential.valid]
    scale = model.feature_scale if model.feature_scale is not None else train_x.std(0)
    fpc = feature_predictive(model, samples, x_o, jax.random.fold_in(k_ppc, 2), scale=scale)
    metrics["feature_predictive"] = {
        "num_draws": fpc["num_draws"], "valid": fpc["valid"], "close": fpc["close"], "within": fpc["within"],
        "scale": "model.feature_scale" if model.feature_scale is not None else "std of the simulated features",
        "median_abs_deviation": dict(zip(model.feature_names, fpc["median_abs_deviation"].tolist())),
    }
    ppc = None
    if observed_traces is not None:
        ppc = posterior_predictive(model, samples, observed_traces, k_ppc)
        metrics["posterior_predictive"] = {
            "rmse_median_trace": dict(zip(model.channel_names, ppc["rmse"].tolist())),
            "rmse_trace_at_posterior_mean": dict(zip(model.channel_names, ppc["rmse_at_mean"].tolist())),
            "rmse_draws_mean": float(ppc["rmse_draws"].mean()),
            "num_invalid": ppc["num_invalid"],
        }
    if check:
        if sequential is None:
            prior_x, held_out = bank.x, bank.x[np.concatenate([cal_idx, test_idx])]
        else:
            first = sequential.rounds[0].num_simulations
            prior_x, held_out = sequential.x[:first], None
        metrics["misspecification"] = run_check(model, x_o, prior_x, jax.random.fold_in(k_ppc, 3), out,
                                                posterior=npe_posterior if sequential is None else None,
                                                x_embedding=held_out, alpha=alpha, progress=progress)
    diagnostics_s = time.perf_counter() - t0

    # -- outputs ---------------------------------------------------------------------------------
    posterior.save(out / "posterior.eqx")
    to_inference_data(samples, names, observed=x_o, truth=truth).to_netcdf(str(out / "posterior.nc"))
    plotting.pairplot(samples, names, truth=truth, path=out / "pairplot.png",
                      title=f"{model.name}: posterior from {num_sims} simulations")
    plotting.feature_deviations(fpc["deviation"], model.feature_names, fpc["within"], path=out / "ppc_features.png")
    figures = ["pairplot.png", "ppc_features.png", "training.png"]
    if "verdict" in metrics.get("misspecification", {}):
        figures.insert(0, "misspecification.png")
    if ppc is not None:
        times = np.arange(observed_traces.shape[-1]) * (model.dt or 1.0)
        plotting.traces(times, observed_traces, ppc, model.channel_names, path=out / "ppc.png")
        figures.insert(1, "ppc.png")
    if analysis:
        t0 = time.perf_counter()
        metrics["analysis"] = _posterior_analysis(model, posterior, x_o, samples, jax.random.fold_in(k_ppc, 1), out,
                                                  scale=scale)
        metrics["analysis"]["seconds"] = time.perf_counter() - t0
        figures += ["conditional_correlations.png", "path.png", "perturbations.png"]
    if cov is not None:
        plotting.calibration(cov, names, path=out / "calibration.png")
        figures.insert(2, "calibration.png")
    plotting.training_curve(history, path=out / "training.png")
    np.savez(out / "observation.npz", traces=np.zeros((0, 0)) if observed_traces is None else observed_traces, features=x_o,
             feature_names=np.array(model.feature_names))
    metrics["timings"] = {
        "simulate_s": simulate_s,
        "simulate_sims_per_second": sim_stats.get("sims_per_second"),
        "simulate_compile_s": sim_stats.get("compile_s"),
        "train_s": train_s,
        "sample_s": sample_s,
        "diagnostics_s": diagnostics_s,
        "total_s": time.perf_counter() - t_start,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    write_report(out, metrics, figures)
    metrics["timings"]["total_s"] = time.perf_counter() - t_start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    return metrics


def load_observation(model: Model, path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Read a recorded observation for ``model`` from ``path``: ``(traces, None)`` or ``(None, features)``,
    checked against the model (``resolve_observation`` computes the features of traces).

    - ``.npz`` holding ``traces`` ([channels, time], or [time] for one channel) and/or ``features``
      ([n_features]); traces win when both are there.
    - ``.csv``: traces with one column per channel and one row per time sample (an optional header
      naming the channels), or one row of ``n_features`` feature values under a header of feature names.
    """
    path = Path(path)
    if not path.exists():
        raise ObservationError(f"observation file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if "traces" in keys and np.size(f["traces"]) > 0:
                traces = np.asarray(f["traces"], np.float64)
                traces = traces[None] if traces.ndim == 1 else traces
                return model.check_traces(traces)[0], None
            if "features" in keys:
                return None, model.check_observation(f["features"], name=f"features in {path.name}")
        raise ObservationError(f"{path} holds {sorted(keys)}; an observation file needs 'traces' "
                               f"[channels, time] or 'features' [{len(model.feature_names)}]")
    if suffix == ".csv":
        first = path.read_text().splitlines()[:1]
        header = None
        if first:
            try:
                [float(v) for v in first[0].split(",")]
            except ValueError:
                header = [h.strip() for h in first[0].split(",")]
        try:
            table = np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, ndmin=2)
        except ValueError as err:
            raise ObservationError(f"{path} is not a table of numbers ({err})") from None
        if header is not None and header == list(model.feature_names):
            if len(table) != 1:
                raise ObservationError(f"{path} has {len(table)} rows of features; one observation is one row")
            return None, model.check_observation(table[0], name=f"features in {path.name}")
        if header is None and table.shape == (1, len(model.feature_names)) and len(model.channel_names) != 1:
            return None, model.check_observation(table[0], name=f"features in {path.name}")
        if header is not None and model.channel_names and header != list(model.channel_names):
            raise ObservationError(f"{path} has columns {header}; {model.name} records {list(model.channel_names)} "
                                   f"(or give its {len(model.feature_names)} features under their names)")
        return model.check_traces(table.T)[0], None
    raise ObservationError(f"observation file {path} must be .npz or .csv, got {suffix or 'no extension'}")


def run_check(model: Model, x_o, x_prior, key, out: Path | None = None, *, posterior=None, x_embedding=None,
              alpha: float = 0.05, progress: bool = False) -> dict:
    """The misspecification check of one observation: the record for ``metrics.json``, the figure
    ``out/misspecification.png`` and a console warning when the verdict is "misspecified". Too few valid
    prior-predictive simulations to test: a record that says so (the run goes on)."""
    valid = int(np.all(np.isfinite(x_prior), axis=1).sum())
    try:
        report = check_observation(x_o, x_prior, key, posterior=posterior, x_embedding=x_embedding, alpha=alpha,
                                   feature_names=list(model.feature_names), progress=progress,
                                   density_config=npe_config_for(model))
    except ShapeError as err:
        console.print(f"[yellow]misspecification check skipped: {err}")
        return {"skipped": str(err), "num_valid_prior_simulations": valid}
    record = report.as_dict()
    if out is not None:
        plotting.misspecification(record, path=Path(out) / "misspecification.png")
    style = "bold red" if report.misspecified else "green"
    console.print(f"[{style}]model check: {escape(report.summary())}")
    return record


def check(model: Model, *, out, observed_traces=None, observed_features=None, num_simulations: int = 5000,
          seed: int = 0, alpha: float = 0.05, chunk_size: int = DEFAULT_CHUNK, progress: bool = True) -> dict:
    """Can any parameter of ``model`` explain the observation? The check alone, without inference.

    Simulates ``num_simulations`` from the prior into ``out/bank.zarr`` (resumable), runs the tests
    (``run_check``) and writes ``out/check.json``, ``out/misspecification.png`` and ``out/report.html``.
    The observation: ``observed_traces`` or ``observed_features``, else the model's published one, else a
    simulation at its published truth.
    """
    out = prepare_output(out)
    key = jax.random.key(seed)
    _, x_o, _ = resolve_observation(model, jax.random.fold_in(key, 7), traces=observed_traces,
                                    features=observed_features)
    k_bank, k_check = jax.random.split(key)
    t0 = time.perf_counter()
    bank = simulate(model, num_simulations, k_bank, path=out / "bank.zarr", chunk_size=chunk_size, progress=progress)
    record = run_check(model, x_o, bank.x, k_check, out, alpha=alpha, progress=progress)
    record.update(model=model.name, observed_features=dict(zip(model.feature_names, np.asarray(x_o).tolist())),
                  num_invalid_simulations=bank.num_invalid, seconds=time.perf_counter() - t0)
    (out / "check.json").write_text(json.dumps(record, indent=2, default=_json_default))
    write_check_report(out, record)
    return record


def _posterior_analysis(model, posterior, x_o, samples, key, out: Path, *, scale) -> dict:
    """Conditional correlations, a path between two samples, perturbations; figures into ``out``."""
    names = model.param_names
    log_prob = posterior.log_prob_fn(x_o)

    box = _priors.bounds(model.prior)
    lo_q, hi_q = np.quantile(samples, [0.001, 0.999], axis=0)
    pad = 0.2 * (hi_q - lo_q) + 1e-6
    lo, hi = lo_q - pad, hi_q + pad
    if box is not None:
        lo, hi = np.maximum(lo, box[0]), np.minimum(hi, box[1])
    ref = samples[:2000]
    lp = np.asarray(log_prob(jnp.asarray(ref, jnp.float32)))
    mode = ref[np.argmax(lp)]
    corr = conditional_correlations(log_prob, ref[:5], lo, hi, resolution=30)
    plotting.correlation_matrix(corr, names, path=out / "conditional_correlations.png")

    # path: from the densest sample to the most distant of the denser half (box-scaled distance)
    width = (hi_q - lo_q) + 1e-12
    dense = ref[lp >= np.median(lp)]
    far = dense[np.argmax(np.sum(((dense - mode) / width) ** 2, axis=1))]
    low, high = (None, None) if box is None else box
    path = high_probability_path(log_prob, mode, far, low=low, high=high, loc=samples.mean(0),
                                 scale=samples.std(0) + 1e-6, num_points=20, steps=800)
    k_path, k_pert, k_close = jax.random.split(key, 3)
    # does the activity stay close to the observation along the path (and along the straight line)?
    line = np.linspace(0.0, 1.0, len(path.points))[:, None] * (far - mode) + mode
    near = closeness(model, np.concatenate([path.points, line]), x_o, k_close, scale=scale)
    on_path, on_line = np.split(near["close"], 2)
    at = path.points[np.linspace(0, len(path.points) - 1, 5).round().astype(int)]
    channel = 0
    traces = np.asarray(simulate_traces(model, k_path, jnp.asarray(at, jnp.float32)))[:, channel]
    times = np.arange(traces.shape[-1]) * (model.dt or 1.0)
    plotting.path_activity(path, times, traces, model.channel_names[channel], path=out / "path.png")

    # perturbations of the mode by the same distance along the most sensitive / robust directions
    sens = sensitivity(log_prob, mode, scale=width)
    step = np.sqrt(4.0 / max(sens.eigenvalues[-1], 1e-12))  # log density falls by 2 along the sensitive one
    moved = {}
    for which in ("most_sensitive", "most_robust"):
        theta = mode + step * sens.direction_in_parameters(which)
        if box is not None:
            theta = np.clip(theta, box[0] + 1e-6 * (box[1] - box[0]), box[1] - 1e-6 * (box[1] - box[0]))
        moved[which] = theta
    thetas = jnp.asarray(np.stack([mode, moved["most_sensitive"], moved["most_robust"]]), jnp.float32)
    tr = np.asarray(simulate_traces(model, k_pert, thetas))[:, channel]
    plotting.perturbations(times, [{"posterior mode": tr[0], "moved": tr[1]}, {"posterior mode": tr[0], "moved": tr[2]}],
                           ["along the most sensitive direction", "the same distance along the most robust direction"],
                           model.channel_names[channel], path=out / "perturbations.png")
    return {
        "conditional_correlation": {a: dict(zip(names, row.tolist())) for a, row in zip(names, corr)},
        "path": {"start": dict(zip(names, mode.tolist())), "end": dict(zip(names, far.tolist())),
                 "min_log_prob": float(path.log_prob.min()), "min_log_prob_straight_line": float(path.straight_log_prob.min()),
                 "posterior_log_prob_quantile_05": float(np.quantile(lp, 0.05)),
                 "share_close_along_path": float(on_path.mean()), "share_close_along_straight_line": float(on_line.mean())},
        "sensitivity": {
            "point": dict(zip(names, mode.tolist())),
            "hessian_eigenvalues_box_scaled": sens.eigenvalues.tolist(),
            "most_sensitive_direction": dict(zip(names, sens.direction_in_parameters("most_sensitive").tolist())),
            "most_robust_direction": dict(zip(names, sens.direction_in_parameters("most_robust").tolist())),
            "trace_rmse_moved_sensitive": float(np.sqrt(np.mean((tr[1] - tr[0]) ** 2))),
            "trace_rmse_moved_robust": float(np.sqrt(np.mean((tr[2] - tr[0]) ** 2))),
        },
    }


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def amortized_posterior(model: Model, *, out, num_simulations: int, seed: int = 0, held_out: float = 0.1,
                        chunk_size: int = DEFAULT_CHUNK, progress: bool = True):
    """An amortized NPE of ``model`` from ``num_simulations`` prior simulations, resumable: the bank is
    ``out/bank.zarr`` and the trained posterior ``out/posterior.nsbi``, reloaded when
    ``out/posterior.json`` records the same model, simulations and seed.

    Returns:
        ``(posterior, bank, held_out_index)``: the last ``held_out`` share of the bank was not trained on.
    """
    out = prepare_output(out)
    k_bank, k_train = jax.random.split(jax.random.key(seed))
    bank = simulate(model, num_simulations, k_bank, path=out / "bank.zarr", chunk_size=chunk_size, progress=progress)
    n_train = len(bank) - max(int(held_out * len(bank)), 1)
    identity = {"model": model.name, "model_config": json.loads(json.dumps(model.config(), default=str)),
                "num_simulations": len(bank), "num_train": n_train, "seed": seed}
    path, ident_path = out / "posterior.nsbi", out / "posterior.json"
    if path.exists() and ident_path.exists() and json.loads(ident_path.read_text()) == identity:
        posterior = load_posterior(path)
        console.print(f"posterior reloaded from {path}")
    else:
        if bank.num_invalid:
            console.print(f"[yellow]{bank.num_invalid} of {len(bank)} simulations gave NaN/inf features; "
                          "excluded from training")
        posterior, _ = fit_npe(bank.theta[:n_train], bank.x[:n_train], model.prior, key=k_train,
                               config=npe_config_for(model), param_names=model.param_names,
                               valid=bank.valid[:n_train], progress=progress)
        posterior.save(path)
        ident_path.write_text(json.dumps(identity, indent=2))
    return posterior, bank, np.arange(n_train, len(bank))


DISCRIMINATION_MODELS = ("lif", "qif", "adex", "izhikevich", "fhn", "wilson-cowan")


def discrimination_study(model_names=DISCRIMINATION_MODELS, *, out, num_per_model: int = 2000, seed: int = 0,
                         progress: bool = True) -> dict:
    """Which of ``model_names`` made a recording? ``misspecification.discriminate`` on the shared protocol;
    writes ``out/discrimination.json`` and ``out/discrimination.png`` (confusion matrices, accuracy against
    recording length and against matched firing rate)."""
    from . import models as _models
    from .misspecification import discriminate

    out = prepare_output(out)
    t0 = time.perf_counter()
    result = discriminate({n: _models.get(n) for n in model_names}, jax.random.key(seed),
                          num_per_model=num_per_model, progress=progress)
    record = {**result.as_dict(), "seed": seed, "seconds": time.perf_counter() - t0}
    (out / "discrimination.json").write_text(json.dumps(record, indent=2, default=_json_default))
    plotting.discrimination(record, path=out / "discrimination.png")
    return record
