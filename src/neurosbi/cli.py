"""``neurosbi`` command line (typer + rich): parse, call the library, write outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ._errors import NeurosbiError

app = typer.Typer(help="Simulation-based inference for models of neural dynamics.", no_args_is_help=True,
                  add_completion=False)
console = Console(stderr=True, soft_wrap=True)


def _fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/] {err}")
    raise typer.Exit(code=2)


def _model(name: str, *, autocorr: bool = False, **options):
    from . import models

    if autocorr:
        if name != "montbrio":
            raise ValueError(f"--autocorr adds autocorrelation features to montbrio; {name} has no such option")
        from .models.montbrio import AUTOCORR_LAGS

        options["autocorr_lags"] = AUTOCORR_LAGS
    return models.get(name, **{k: v for k, v in options.items() if v is not None})


_AUTOCORR_HELP = ("montbrio: append each window's autocorrelation at 0.05-1.6 s lags to the 17 published "
                  "features per variable (better with v only)")


@app.command("models")
def models_cmd() -> None:
    """List the registered models."""
    from . import models

    table = Table("name", "parameters", "features", "description")
    for name in models.names():
        m = models.get(name)
        table.add_row(name, ", ".join(m.param_names), str(len(m.feature_names)), models.describe(name))
    Console().print(table)


@app.command("simulate")
def simulate_cmd(
    model: str = typer.Argument(..., help="model name (see `neurosbi models`)"),
    num: int = typer.Option(..., "--num", help="number of simulations"),
    out: Path = typer.Option(..., "--out", help="Zarr bank to write (re-run the same command to resume)"),
    seed: int = typer.Option(0, help="PRNG seed; the bank is a deterministic function of it"),
    observe: Optional[str] = typer.Option(None, help="observed variables for montbrio: rv or v"),
    noise: Optional[float] = typer.Option(None, help="noise sigma (montbrio: 0.1 stochastic, 0 deterministic)"),
    autocorr: bool = typer.Option(False, "--autocorr", help=_AUTOCORR_HELP),
    chunk_size: Optional[int] = typer.Option(None, help="simulations per compiled call [default: 1024]"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON line with the run's statistics"),
    executor: str = typer.Option("local", help="local (this process, every local device) or ray (chunks on one "
                                 "Ray worker per node; needs neurosbi[ray])"),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto); "
                                          "default: a local cluster on every core. OUT must be on a file system "
                                          "every worker sees"),
) -> None:
    """Run NUM simulations drawn from the prior into a resumable Zarr bank (same bank whatever the executor)."""
    import jax

    from .simulate import DEFAULT_CHUNK, prepare_output, simulate

    try:
        m = _model(model, observe=observe, noise_sigma=noise, autocorr=autocorr)
        prepare_output(out.parent if out.parent != Path("") else Path("."))
        bank = simulate(m, num, jax.random.key(seed), path=out, chunk_size=chunk_size or DEFAULT_CHUNK,
                        progress=not json_out, executor=executor, address=address, load=False)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    stats = {"model": m.name, "out": str(out), **bank.stats}
    if json_out:
        print(json.dumps(stats))
    else:
        screened = f" ({bank.num_screened} screened out by the pilot run)" if bank.num_screened else ""
        console.print(f"{bank.stats['num_simulations']} simulations, {bank.stats['num_invalid']} invalid{screened}, "
                      f"{bank.stats['sims_per_second']:.0f} simulations/s -> {out}")


@app.command("infer")
def infer_cmd(
    model: str = typer.Argument("montbrio", help="model name (see `neurosbi models`)"),
    num_simulations: Optional[int] = typer.Option(
        None, "--num-simulations", help="simulation budget (default 10000; pyloric 20000)"),
    observe: Optional[str] = typer.Option(None, help="montbrio: rv (r and v) or v (missing-data case)"),
    noise: Optional[float] = typer.Option(None, help="montbrio noise sigma (default 0.1; 0 = deterministic)"),
    autocorr: bool = typer.Option(False, "--autocorr", help=_AUTOCORR_HELP),
    seed: int = typer.Option(0, help="PRNG seed"),
    from_bank: Optional[Path] = typer.Option(None, "--from-bank", help="train from an existing Zarr bank"),
    out: Path = typer.Option(Path("neurosbi-out"), "--out", help="output folder"),
    flow: Optional[str] = typer.Option(None, help="maf or nsf (default maf; hh and pyloric nsf)"),
    rounds: Optional[int] = typer.Option(
        None, help="simulation rounds focused on the observation (1 = amortized NPE; default 1, pyloric 4)"),
    method: str = typer.Option("tsnpe", help="sequential method when --rounds > 1: tsnpe or apt"),
    embedding: Optional[str] = typer.Option(
        None, help="cnn: learn the summary from the raw traces with a causal 1-D CNN trained with the flow"),
    every: int = typer.Option(10, help="with --embedding: keep every N-th trace sample"),
    calibration: int = typer.Option(
        1000, help="held-out simulations to fit the posterior's temperature on (at most a tenth; 0: off)"),
    coverage_tests: int = typer.Option(200, "--coverage-tests", help="further held-out simulations for coverage"),
    observation: Optional[Path] = typer.Option(
        None, "--observation", help="recorded observation: .npz (traces and/or features) or .csv (traces, one "
        "column per channel; or one row of features under their names) [default: the published one]"),
    check: bool = typer.Option(True, "--check/--no-check", help="test whether the model can explain the observation"),
    alpha: float = typer.Option(0.05, help="level of the misspecification check"),
    robust: Optional[str] = typer.Option(
        None, help="npe-rs: a posterior robust to misspecification of this observation (NPE with a learned "
        "summary, fine-tuned with an MMD penalty that keeps the observation's summary among the simulations')"),
    stream: bool = typer.Option(False, "--stream", help="keep the bank on disk and train by streaming "
                                "minibatches from it (a bank larger than memory); whole chunks at its end are "
                                "held out for calibration, coverage and the check"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Infer MODEL's parameters from an observation; write metrics, samples, figures, report.

    The observation is the published one (or a simulation at the published truth) unless --observation
    is given. The model check (on by default) says whether any parameter can explain it."""
    from .inference import NPEConfig
    from .workflow import infer, load_observation, npe_config_for

    try:
        m = _model(model, observe=observe, noise_sigma=noise, autocorr=autocorr)
        traces = features = None
        if observation is not None:
            traces, features = load_observation(m, observation)
        defaults = {"num_simulations": 10_000, "rounds": 1, "flow": "maf", **m.infer_defaults}
        num_simulations = defaults["num_simulations"] if num_simulations is None else num_simulations
        rounds = (1 if from_bank else defaults["rounds"]) if rounds is None else rounds
        config = npe_config_for(m, flow=flow) if embedding is None else NPEConfig(flow=flow or defaults["flow"])
        metrics = infer(m, out=out, num_simulations=num_simulations, seed=seed, bank_path=from_bank,
                        config=config, progress=not quiet, rounds=rounds, method=method,
                        embedding=embedding, trace_every=every, num_calibration=calibration,
                        num_coverage_tests=coverage_tests, observed_traces=traces, observed_features=features,
                        check=check, alpha=alpha, robust=robust, stream=stream)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    table = Table("parameter", "truth", "posterior mean", "std", "z", "shrinkage")
    for n in metrics["param_names"]:
        truth = metrics["true_params"][n] if metrics["true_params"] else float("nan")
        table.add_row(n, f"{truth:.4g}", f"{metrics['posterior_mean'][n]:.4g}", f"{metrics['posterior_std'][n]:.3g}",
                      f"{metrics['z_score'][n]:.2f}", f"{metrics['shrinkage'][n]:.3f}")
    Console().print(table)
    t = metrics["timings"]
    Console().print(
        f"parameter RMSE {metrics['rmse_posterior_mean']:.4g} | coverage error {metrics['coverage']['max_error']:.3f} | "
        f"simulate {t['simulate_s']:.1f} s, train {t['train_s']:.1f} s, sample {t['sample_s']:.2f} s, "
        f"total {t['total_s']:.1f} s | report: {out / 'report.html'}"
    )


@app.command("epi")
def epi_cmd(
    model: str = typer.Argument(..., help="a model with an emergent property: lds-2d, rank2-rnn, v1-ssn, sc-proanti, stg-hub"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    prop: Optional[str] = typer.Option(None, "--property", help="emergent property name [default: the model's "
                                       "published one]"),
    seed: int = typer.Option(0, help="PRNG seed"),
    neurons: Optional[int] = typer.Option(None, help="rank2-rnn: number of neurons N (|z| = 4N) [default: 2]"),
    max_epochs: Optional[int] = typer.Option(None, help="augmented-Lagrangian epochs at most [default: 100]"),
    iterations: Optional[int] = typer.Option(None, help="Adam steps per epoch [default: the paper's per model]"),
    batch_size: Optional[int] = typer.Option(None, help="parameters per step [default: the paper's per model]"),
    c0: Optional[float] = typer.Option(None, help="initial penalty c [default: the paper's per model]"),
    init_steps: Optional[int] = typer.Option(None, help="steps fitting the initial Gaussian [default: 2000]"),
    init: Optional[str] = typer.Option(None, help="initial Gaussian: 'box' (the box's centre, a quarter of its "
                                       "width) or 'abc' (fitted to uniform draws within one target std of the "
                                       "property) [default: box]"),
    extra_epochs: Optional[int] = typer.Option(None, "--epochs-after-convergence",
                                               help="epochs run after the first converged one, to choose the "
                                               "converged epoch of greatest entropy [default: 0]"),
    json_out: bool = typer.Option(False, "--json", help="print metrics.json's summary as one JSON line"),
) -> None:
    """Emergent property inference: the maximum-entropy parameter distribution showing a property.

    Writes metrics.json (converged, per-constraint p-values, entropy, epochs, num_simulations, timings,
    mode, Hessian eigenvalues), distribution/, samples.nc and pairplot / history / predictive PNGs.
    """
    from .emergent import emergent_property_of, epi_config_for, run_epi
    from .workflow import prepare_output

    try:
        if neurons is not None and model != "rank2-rnn":
            raise ValueError(f"--neurons sets the size of rank2-rnn; {model} has no such option")
        m = _model(model, num_neurons=neurons)
        p = emergent_property_of(m, prop)
        config = epi_config_for(m, max_epochs=max_epochs, iterations_per_epoch=iterations, batch_size=batch_size,
                                c0=c0, init_steps=init_steps, init=init, epochs_after_convergence=extra_epochs)
        prepare_output(out)
        metrics = run_epi(m, out=out, prop=p, seed=seed, config=config, progress=not json_out)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    summary = {k: metrics[k] for k in ("model", "converged", "epoch", "entropy", "p_values", "num_simulations",
                                       "timings")}
    if json_out:
        print(json.dumps(summary))
    else:
        verdict = "converged" if metrics["converged"] else "[bold red]did not converge[/]"
        console.print(f"EPI on {m.name} ({p.name}): {verdict} at epoch {metrics['epoch']}, entropy "
                      f"{metrics['entropy']:.3f} nats, {metrics['num_simulations']} simulations, "
                      f"{metrics['timings']['total_s']:.1f} s -> {out}")


@app.command("epi-analysis")
def epi_analysis_cmd(
    name: str = typer.Argument(..., help="lds-contours | v1-variability | sc-regimes | stg-sensitivity"),
    out: Path = typer.Option(..., "--out", help="output folder (the EPI fits go in subfolders; existing fits are "
                             "reused, so an interrupted analysis resumes)"),
    seed: list[int] = typer.Option([0], help="PRNG seed of the fits and of the analysis; repeat it (--seed 1 "
                                   "--seed 2 ...) to fit once per seed under OUT/seed-K and analyse the converged "
                                   "fit of greatest entropy"),
    max_epochs: Optional[int] = typer.Option(None, help="augmented-Lagrangian epochs at most per fit [default: 100]"),
    json_out: bool = typer.Option(False, "--json", help="print analysis.json as one JSON line"),
) -> None:
    """A scientific analysis of the EPI paper: its EPI fits, analysis.json and a figure."""
    from .emergent_analyses import run_analysis

    try:
        result = run_analysis(name, out=out, seed=seed, max_epochs=max_epochs, progress=not json_out)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    if json_out:
        print(json.dumps(result))
    else:
        fits = ", ".join(f"{k}: {'converged' if v['converged'] else 'NOT converged'}"
                         for k, v in result["fits"].items())
        chosen = "".join(f" ({k}: seed {v['chosen_seed']} of {len(v) - 1})" for k, v in result.get("seeds", {}).items())
        console.print(f"{name}: {fits}{chosen} -> {out / 'analysis.json'}")


@app.command("check")
def check_cmd(
    model: str = typer.Argument(..., help="model name (see `neurosbi models`)"),
    observation: Optional[Path] = typer.Option(
        None, "--observation", help=".npz (traces and/or features) or .csv (traces, one column per channel; or one "
        "row of features under their names) [default: the model's published observation]"),
    num_simulations: int = typer.Option(5000, "--num-simulations", help="prior-predictive simulations to compare with"),
    observe: Optional[str] = typer.Option(None, help="montbrio: rv (r and v) or v (missing-data case)"),
    noise: Optional[float] = typer.Option(None, help="montbrio noise sigma"),
    seed: int = typer.Option(0, help="PRNG seed"),
    alpha: float = typer.Option(0.05, help="level of the verdict (Bonferroni over the tests)"),
    out: Path = typer.Option(Path("neurosbi-check"), "--out", help="output folder"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Can any parameter of MODEL explain the observation? MMD and density tests against prior-predictive
    simulations, and which features the model cannot match; writes check.json, a figure and report.html.
    Exit code 1 when the verdict is "misspecified"."""
    from .workflow import check, load_observation

    try:
        m = _model(model, observe=observe, noise_sigma=noise)
        traces = features = None
        if observation is not None:
            traces, features = load_observation(m, observation)
        record = check(m, out=out, observed_traces=traces, observed_features=features,
                       num_simulations=num_simulations, seed=seed, alpha=alpha, progress=not quiet)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    if "skipped" in record:
        raise typer.Exit(code=2)
    table = Table("feature", "observed", "z-score", "P(misspecified)")
    for f in record["features"]:
        table.add_row(f["name"], f"{f['observed']:.4g}", f"{f['zscore']:.2f}", f"{f.get('p_misspecified', float('nan')):.2f}")
    Console().print(table)
    Console().print(f"report: {out / 'report.html'}")
    if record["verdict"] == "misspecified":
        raise typer.Exit(code=1)


misspec_app = typer.Typer(help="Seed-000 misspecification studies: which model, how robust, which prior.",
                          no_args_is_help=True)
app.add_typer(misspec_app, name="misspec")


@misspec_app.command("discriminate")
def discriminate_cmd(
    models: Optional[str] = typer.Option(
        None, "--models", help="comma-separated models sharing the spike-train protocol "
        "[default: lif,qif,adex,izhikevich,fhn,wilson-cowan]"),
    num_per_model: int = typer.Option(2000, "--num-per-model", help="recordings simulated per model (prior draws)"),
    seed: int = typer.Option(0, help="PRNG seed"),
    out: Path = typer.Option(Path("neurosbi-discriminate"), "--out", help="output folder"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Which model made this recording? Classifiers on spike-train features and on raw spike trains;
    writes discrimination.json and discrimination.png (confusion matrices, accuracy against recording
    length and on a firing-rate-matched test set)."""
    from .workflow import DISCRIMINATION_MODELS, discrimination_study

    names = DISCRIMINATION_MODELS if models is None else [m.strip() for m in models.split(",") if m.strip()]
    try:
        record = discrimination_study(names, out=out,
                                      num_per_model=num_per_model, seed=seed, progress=not quiet)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    table = Table("classifier", "held-out accuracy")
    for rep, acc in record["accuracy"].items():
        table.add_row(rep, f"{acc:.3f}")
    table.add_row("features, rate-matched", f"{record['matched_accuracy']:.3f}")
    table.add_row("chance", f"{record['chance']:.3f}")
    Console().print(table)
    Console().print(f"figure: {out / 'discrimination.png'}")


def _strengths(spec: Optional[str]) -> Optional[dict]:
    """``kind=s1/s2/...,kind=...`` or bare kinds (their default grids)."""
    from .misspecification.robustness import DEFAULT_STRENGTHS

    if spec is None:
        return None
    grid = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, values = part.partition("=")
        kind = kind.strip()
        if not values:
            if kind not in DEFAULT_STRENGTHS:
                raise ValueError(f"unknown perturbation {kind!r}; choose from {', '.join(DEFAULT_STRENGTHS)}")
            grid[kind] = DEFAULT_STRENGTHS[kind]
            continue
        try:
            grid[kind] = tuple(float(v) for v in values.split("/"))
        except ValueError:
            raise ValueError(f"strengths of {kind} must be numbers separated by '/', e.g. {kind}=0/0.1/0.2; "
                             f"got {values!r}") from None
    return grid


@misspec_app.command("robustness")
def robustness_cmd(
    perturbations: Optional[str] = typer.Option(
        None, "--perturbations", help="perturbations and strengths, e.g. 'synapse=0/0.01/0.05,observation' (a bare "
        "name takes its default grid) [default: adaptation, synapse, colored, multiplicative, observation, "
        "contamination, heterogeneity]"),
    num_simulations: int = typer.Option(20_000, "--num-simulations", help="training simulations of the MPR model"),
    num_observations: int = typer.Option(100, "--num-observations", help="observations per perturbation and strength"),
    noise: float = typer.Option(0.1, help="MPR noise sigma of the trained model and of every perturbed one"),
    alpha: float = typer.Option(0.05, help="level of the misspecification check"),
    seed: int = typer.Option(0, help="PRNG seed"),
    out: Path = typer.Option(Path("neurosbi-robustness"), "--out", help="output folder (re-run to resume)"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """How robust is inference to a perturbed model? Train NPE on the MPR mean field, observe data from
    versions changed in functional form (adaptation, synaptic kinetics, a Gaussian share of the
    excitability distribution) or noise model (colored, multiplicative, observation noise,
    contamination) at increasing strength; writes robustness.json and robustness.png (posterior bias, coverage of the 90 % region, detection rate against strength)."""
    from .misspecification.robustness import robustness_study
    from .models import Montbrio

    try:
        record = robustness_study(out=out, model=Montbrio(noise_sigma=noise), strengths=_strengths(perturbations),
                                  num_simulations=num_simulations, num_observations=num_observations, seed=seed,
                                  alpha=alpha, progress=not quiet)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    table = Table("perturbation", "strength", "RMSE (prior sd)", "coverage 90 %", "detection rate", "invalid")
    for kind, points in record["points"].items():
        for p in points:
            table.add_row(kind, f"{p['strength']:g}", f"{p['rmse']:.3f}", f"{p['coverage']:.2f}",
                          f"{p['detection_rate']:.2f}", str(p["num_invalid"]))
    Console().print(table)
    Console().print(f"figure: {out / 'robustness.png'}")


@misspec_app.command("cross-scale")
def cross_scale_cmd(
    neurons: int = typer.Option(10_000, help="QIF network size N"),
    duration: float = typer.Option(100.0, help="protocol length (s); the step current covers [0.3, 0.6] of it"),
    num_simulations: int = typer.Option(20_000, "--num-simulations", help="mean-field simulations for the NPE"),
    alpha: float = typer.Option(0.05, help="level of the misspecification check"),
    seed: int = typer.Option(0, help="PRNG seed"),
    out: Path = typer.Option(Path("neurosbi-cross-scale"), "--out", help="output folder (re-run to resume)"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Fit the MPR mean field to QIF-network data (seed 003 §3.5): η–J posterior correlation on network and
    mean-field data (published ρ ≈ −0.78), the mean field's lag after the stimulus onset, and the
    misspecification verdict on the network's data; writes cross_scale.json and cross_scale.png."""
    from .misspecification.cross_scale import cross_scale_study
    from .models import QIFNetwork

    try:
        network = QIFNetwork(n_neurons=neurons, duration=duration, t_on=3 * duration / 10, t_off=0.6 * duration)
        record = cross_scale_study(out=out, network=network, num_simulations=num_simulations, seed=seed,
                                   alpha=alpha, progress=not quiet)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    table = Table("data", *record["param_names"], "rho(eta, J)", "verdict")
    for name, d in record["data"].items():
        table.add_row(name, *(f"{d['posterior_mean'][n]:.3g}" for n in record["param_names"]),
                      f"{d['rho_eta_J']:.2f}", d["misspecification"]["verdict"])
    Console().print(table)
    lag = record["lag"]
    Console().print(f"mean field's first peak after onset: {1e3 * lag['onset_lag_s']:+.0f} ms relative to the "
                    f"network's | figure: {out / 'cross_scale.png'}")


@misspec_app.command("prior-transfer")
def prior_transfer_cmd(
    neurons: int = typer.Option(1000, help="size of the detailed QIF network (sampled Cauchy excitabilities)"),
    population_sd: float = typer.Option(
        0.1, "--population-sd", help="sd of the detailed model's population around the truth (fraction of the box)"),
    num_fit: int = typer.Option(400, "--num-fit", help="detailed datasets the prior is learned from"),
    num_test: int = typer.Option(100, "--num-test", help="new detailed datasets it is tested on"),
    num_simulations: int = typer.Option(20_000, "--num-simulations", help="mean-field simulations for the NPE"),
    duration: float = typer.Option(
        100.0, help="length of every recording, detailed and mean-field (the stimulus keeps its place: from 30 %% "
        "to 60 %% of it); shorter recordings make the prior matter more"),
    seed: int = typer.Option(0, help="PRNG seed"),
    out: Path = typer.Option(Path("neurosbi-prior-transfer"), "--out", help="output folder (re-run to resume)"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Learn the MPR model's prior from a QIF network's known population of parameters (fit MPR to many network
    datasets with amortized NPE, a flow on the pooled posterior draws) and test it on new network data against
    the box prior and the population itself; writes prior_transfer.json and prior_transfer.png."""
    from .misspecification.prior_transfer import prior_transfer_study
    from .models import QIFNetwork

    try:
        if not duration > 0:
            raise ValueError(f"--duration must be > 0 (seconds of recording), got {duration}")
        detailed = QIFNetwork(n_neurons=neurons, heterogeneity="random", duration=duration, t_on=3 * duration / 10,
                              t_off=6 * duration / 10)
        record = prior_transfer_study(out=out, detailed=detailed,
                                      population_sd=population_sd, num_fit=num_fit, num_test=num_test,
                                      num_simulations=num_simulations, seed=seed, progress=not quiet)
    except (NeurosbiError, ValueError, TypeError) as err:
        _fail(err)
    table = Table("prior", "RMSE (prior sd)", "posterior sd", "coverage 90 %", "predictive error", "median ESS")
    for name, p in record["priors"].items():
        table.add_row(name, f"{p['rmse']:.3f}", f"{p['posterior_sd']:.3f}", f"{p['coverage_90']:.2f}",
                      f"{p['predictive_error']:.3f}", f"{p['median_ess']:.0f}")
    Console().print(table)
    Console().print(f"figure: {out / 'prior_transfer.png'}")


def main() -> None:  # pragma: no cover - console entry point
    from ._runtime import use_all_cores

    use_all_cores()  # before any JAX work: one XLA host device per core
    try:
        app()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; re-run the same command to resume from the bank")
        sys.exit(130)


dynamics_app = typer.Typer(help="Dynamics tools: spectral submanifolds and neural ODEs.",
                           no_args_is_help=True)
app.add_typer(dynamics_app, name="dynamics")


@dynamics_app.command("ssm")
def dynamics_ssm_cmd(
    name: str = typer.Argument("mpr-node", help="mpr-node | hh-rest | wilson-cowan | rnn-line"),
    out: Path = typer.Option(Path("neurosbi-ssm"), "--out", help="output folder (ssm.json, ssm.png)"),
    order: int = typer.Option(5, help="degree of the equation-driven SSM and its reduced field"),
    data_order: int = typer.Option(3, help="degree of the data-driven graph"),
    field_order: int = typer.Option(5, help="degree of the data-driven reduced field"),
    amplitude: Optional[float] = typer.Option(None, help="radius of the initial perturbations along the unit "
                                              "eigenvectors [default: per system]"),
    seed: int = typer.Option(0, help="seed of the initial conditions"),
    json_out: bool = typer.Option(False, "--json", help="print ssm.json as one JSON line"),
) -> None:
    """SSM reduction of a neural model: the SSM from its equations and one fitted to simulated trajectories,
    both scored by NMTE on held-out trajectories of the full model."""
    from .dynamics.ssm import ResonanceError, run_ssm_application

    try:
        result = run_ssm_application(name, out=out, order=order, data_order=data_order, field_order=field_order,
                                     amplitude=amplitude, seed=seed)
    except (ResonanceError, ValueError, RuntimeError) as err:
        _fail(err)
    if json_out:
        print(json.dumps(result))
        return
    rows = [("equations", result["equation"]), ("data, SVD tangent", result["data_svd_tangent"]),
            ("data, joint tangent", result["data_joint_tangent"])]
    console.print(f"{name}: {result['ssm_dim']}-D SSM of a {result['state_dim']}-D model, spectral quotient "
                  f"{result['spectral_quotient']:.0f}; held-out NMTE " +
                  ", ".join(f"{label} {r['test_nmte_mean']:.2%}" for label, r in rows) + f" -> {out / 'ssm.json'}")


@dynamics_app.command("neural-ode")
def dynamics_neural_ode_cmd(
    data: str = typer.Option("deterministic", help="MPR training set: deterministic | noisy | noisy-large; or qif "
                             "(QIF-network trajectory: train on 400 points, extrapolate to 2,000)"),
    out: Path = typer.Option(Path("neurosbi-neural-ode"), "--out", help="output folder (neural_ode.json, .png)"),
    iterations: Optional[int] = typer.Option(None, help="Adam steps [default: the seed's 45,000; 10,000 for qif]"),
    seed: int = typer.Option(0, help="PRNG seed (noise, split, initialization)"),
    substeps: int = typer.Option(1, help="Heun steps per sampling interval of the data (MPR sets)"),
    json_out: bool = typer.Option(False, "--json", help="print neural_ode.json as one JSON line"),
) -> None:
    """Learn the MPR mean-field vector field with a neural ODE (seed 003 §3.8) and compare its phase
    portrait, nullclines and fixed points with the true ones."""
    from .dynamics import run_neural_ode, run_qif_extrapolation

    try:
        if data == "qif":
            result = run_qif_extrapolation(out=out, iterations=iterations or 10_000, seed=seed, progress=not json_out)
        else:
            result = run_neural_ode(data, out=out, iterations=iterations or 45_000, seed=seed, substeps=substeps,
                                    progress=not json_out)
    except ValueError as err:
        _fail(err)
    if json_out:
        print(json.dumps(result))
        return
    if data == "qif":
        console.print(f"neural ODE on QIF data: extrapolation RMSE {result['rmse_extrapolation']:.3f} (NMTE "
                      f"{result['nmte_extrapolation']:.1%}) over {result['total_points'] - result['train_points']} "
                      f"points after training on {result['train_points']} -> {out / 'neural_ode.json'}")
        return
    err = result["field_error"]
    console.print(f"neural ODE on {data}: field error {err['relative_rms']:.1%} (median angle "
                  f"{err['median_angle_degrees']:.1f}°), {len(result['learned_fixed_points'])} fixed points learned "
                  f"vs {len(result['true_fixed_points'])} true, {result['seconds']:.0f} s -> {out / 'neural_ode.json'}")


bench_app = typer.Typer(help="Benchmarks of the seeds, each one command.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("mpr-table")
def mpr_table_cmd(
    case: str = typer.Option("deterministic", help="deterministic (sigma 0, v and r) | stochastic (sigma 0.1, v "
                             "and r) | missing (sigma 0.1, v only)"),
    methods: str = typer.Option("de,pso,bo,map,nuts,npe", help="comma-separated, among de,pso,bo,map,nuts,npe; on the "
                                 "missing case also de+tde, ..., nuts+tde: the hidden r reconstructed from v by delay "
                                 "embedding (tde.json, tde.png) joins the fit as a pseudo-observation"),
    repeats: int = typer.Option(3, help="runs per method (seeds 0..R-1): the table reports mean and std"),
    out: Path = typer.Option(..., "--out", help="output folder: table.json, table.md, table.png and runs/ (a run "
                             "already there is reused, so an interrupted table resumes)"),
    budget: str = typer.Option("published", help="published (the seed's settings: DE 500 generations, PSO 500 "
                               "iterations, BO 50+450, NUTS 1000+500 x 4 chains (500+500 from the EKF's Laplace "
                               "start), NPE 100k simulations) | tiny (a smoke test)"),
    likelihood: Optional[str] = typer.Option(None, help="NUTS likelihood: ode | state-space | ekf (the "
                                             "latent path integrated out by an extended Kalman filter) [default: ode "
                                             "on deterministic data, state-space on stochastic, ekf on missing]"),
    data_seed: int = typer.Option(0, help="seed of the simulated observation"),
    json_out: bool = typer.Option(False, "--json", help="print table.json as one JSON line"),
) -> None:
    """Seed 003's benchmark table: DE, PSO, BO, MAP, NUTS and NPE on the MPR model, against the published rows."""
    from .mpr_table import run_table

    try:
        table = run_table(case, out=out, methods=[m.strip() for m in methods.split(",") if m.strip()],
                          repeats=repeats, budget=budget, data_seed=data_seed, likelihood=likelihood,
                          progress=not json_out)
    except (NeurosbiError, ValueError, KeyError) as err:
        _fail(err)
    if json_out:
        print(json.dumps(table))
    else:
        console.print((out / "table.md").read_text())


@bench_app.command("mpr-regimes")
def mpr_regimes_cmd(
    out: Path = typer.Option(..., "--out", help="output folder: regimes.json, regimes.png"),
    num_simulations: int = typer.Option(20_000, help="skeleton simulations over the prior box for NPE"),
    seed: int = typer.Option(0, help="seed of the prior draws, training and posterior draws"),
    json_out: bool = typer.Option(False, "--json", help="print regimes.json as one JSON line"),
) -> None:
    """Seed 003 Fig. 8: NPE on dynamical-class features (settled r, v and damped oscillations before, during and
    after the step current), its posterior draws for a bistable, a focus and a node observation over the
    linear-stability phase diagram (eta/Delta, J/sqrt(Delta)), and the share of draws in each observation's regime."""
    from .mpr_regimes import run_regimes

    if num_simulations < 100:
        _fail(ValueError(f"num-simulations must be >= 100 to train NPE, got {num_simulations}"))
    record = run_regimes(out, num_simulations=num_simulations, seed=seed, progress=not json_out)
    if json_out:
        print(json.dumps(record))
    else:
        for name, obs in record["observations"].items():
            console.print(f"{name}: {obs['posterior_share_in_regime']:.1%} of posterior draws in its regime "
                          f"(prior {obs['prior_share_in_regime']:.1%})")
        console.print(f"figure: {out / 'regimes.png'}")
