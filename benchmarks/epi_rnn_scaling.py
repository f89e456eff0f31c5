"""EPI, sequential NPE and SMC-ABC on the rank-2 RNN as the network grows (Bittner et al. 2021, Fig. 2;
reference §1.6).

For each method, N and seed (``--methods epi snpe smc-abc``):

EPI with the paper's settings (real NVP, 3 couplings, 2 x 100 units, n = 200,
c0 = 1e3, beta = 4, 500 iterations per epoch, 200 test batches), timed from the flow's construction
(the Gaussian initialisation included, as in the paper) to
- full constraint convergence (every constraint passes the test; the paper's blue line), and
- the paper's looser criterion: the first epoch whose predictive mean of (Re λ₁, λ₁ˢ) lies within 0.5
  (Euclidean) of (0.5, 1.5).
Simulations are counted as the paper does (batch × iterations; the test batches reported apart).

Sequential NPE with the paper's settings (SNPE-C / APT, MAF with 3 transforms of 50 units, 100 atoms,
batch 200 (1,000 at N = 100), sbi's Adam (5e-4, gradients clipped at 5, no decay), training stopped
after 10 epochs without improvement; 1,000 simulations per round for N < 50, 25,000 at N = 50, 250,000
at N = 100; at most 50 rounds), converged after the first
round whose predictive mean (1,000 posterior draws at x_o = (0.5, 1.5), simulated) lies within 0.5 of
x_o. SMC-ABC with the paper's pyabc settings (population 1,000, ‖x − x_o‖₂, median tolerances, Silverman
kernel, minimum ε = 0.5, at most 200 populations), converged when a population completes at ε = 0.5.
Both are timed from their first simulation, count every simulation, and stop unconverged after
``--max-seconds`` (the paper's limit was 1.5 days on 32 cores).

Published (V100 initialisation + 32-core CPU), mean of 5 seeds to full convergence: N = 2: 15.6 s,
5: 16.1, 10: 29.8, 25: 149.7, 50: 696.0, 100: 5,027.8, 250: 70,892.8 s. Goal here (2 CPU cores):
N = 50 <= 3 min, N = 100 <= 10 min, N = 250 <= 2 h.

Each finished run is written to the output at once; re-running the same command skips the runs
already there (resume).

    python benchmarks/epi_rnn_scaling.py --out benchmarks/results/epi_rnn_scaling.json \
        [--methods epi snpe smc-abc] [--neurons 2 5 10 25 50 100 250] [--seeds 1 2 3 4 5] \
        [--max-seconds 1800] [--skip-after-failure] [--figure benchmarks/results/epi_rnn_scaling.png]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import jax  # noqa: E402
from _machine import describe  # noqa: E402

from neurosbi.inference import EPIConfig, FlowSpec, NPEConfig, fit_epi, sequential_npe, smc_abc  # noqa: E402
from neurosbi.models import RankTwoRNN  # noqa: E402

PUBLISHED = {2: (15.6, 6.0), 5: (16.1, 1.9), 10: (29.8, 6.0), 25: (149.7, 14.0), 50: (696.0, 161.3),
             100: (5027.8, 1606.2), 250: (70892.8, 14801.1)}
GOALS = {50: 180.0, 100: 600.0, 250: 7200.0}
METHODS = ("epi", "snpe", "smc-abc")
X_O = np.array([0.5, 1.5], np.float32)


def paper_config(model) -> EPIConfig:
    d = dict(model.epi_defaults)
    units = d.pop("hidden_units")
    return EPIConfig(**d, max_epochs=200, flow=FlowSpec(hidden_units=units))


def epi_run(n: int, seed: int, max_seconds: float) -> dict:
    model = RankTwoRNN(num_neurons=n)
    prop = model.emergent_property()
    config = paper_config(model)
    dist = fit_epi(model, prop, key=jax.random.key(seed), config=config, progress=False)
    info, hist = dist.info, dist.info["history"]
    mean_f = np.asarray(hist["constraint_means"])[:, :2]
    close = np.linalg.norm(mean_f - np.asarray(prop.mean), axis=1) < 0.5
    first_close = int(np.argmax(close)) if close.any() else None
    per_epoch = config.iterations_per_epoch * config.batch_size
    return {
        "method": "epi", "neurons": n, "dim": 4 * n, "seed": seed, "converged": info["converged"],
        "epochs_to_convergence": info["first_converged_epoch"],
        "seconds_to_convergence": info["timings"]["to_convergence_s"],
        "init_seconds": info["timings"]["init_s"],
        "simulations_to_convergence": info["num_training_simulations_to_convergence"],
        "simulations_to_convergence_with_tests": info["num_simulations_to_convergence"],
        "predictive_mean_epoch": first_close,
        "predictive_mean_seconds": None if first_close is None else hist["seconds"][first_close],
        "predictive_mean_simulations": None if first_close is None else first_close * per_epoch,
        "p_values": info["p_values"], "constraint_means": info["constraint_means"], "entropy": info["entropy"],
    }


def predictive_distance(model, theta, key) -> float:
    """‖mean f(x; θ) − x_o‖₂ over simulations of ``theta``."""
    x = np.asarray(model.simulate_features(key, jax.numpy.asarray(theta, jax.numpy.float32)))
    return float(np.linalg.norm(np.nanmean(x, 0) - X_O))


def snpe_run(n: int, seed: int, max_seconds: float) -> dict:
    model = RankTwoRNN(num_neurons=n)
    per_round = 1_000 if n < 50 else 25_000 if n == 50 else 250_000
    # sbi's training defaults as the paper ran them: Adam at 5e-4, gradients clipped at norm 5, no
    # learning-rate decay (lr_patience past the stopping patience), stop after 10 epochs without improvement
    config = NPEConfig(flow="maf", num_transforms=3, hidden_features=50, batch_size=1_000 if n >= 100 else 200,
                       patience=10, learning_rate=5e-4, clip_norm=5.0, lr_patience=11)
    start = time.perf_counter()
    trace = []

    def check(report, posterior):
        k = jax.random.fold_in(jax.random.key(seed), 10_000 + report.round)
        theta = posterior.sample(k, 1_000, X_O)
        dist = predictive_distance(model, theta, jax.random.fold_in(k, 1))
        trace.append({"round": report.round, "predictive_distance": dist, "seconds": time.perf_counter() - start})
        return dist < 0.5 or time.perf_counter() - start > max_seconds

    result = sequential_npe(model, X_O, key=jax.random.key(seed), rounds=50, simulations_per_round=per_round,
                            method="apt", config=config, num_atoms=100, progress=False, callback=check)
    converged = trace[-1]["predictive_distance"] < 0.5
    sims = sum(r.num_simulations for r in result.rounds)
    return {"method": "snpe", "neurons": n, "dim": 4 * n, "seed": seed, "converged": converged,
            "rounds": len(result.rounds), "simulations_per_round": per_round,
            "seconds_to_convergence": trace[-1]["seconds"] if converged else None,
            "simulations_to_convergence": sims if converged else None,
            "seconds_spent": trace[-1]["seconds"], "simulations_spent": sims, "trace": trace}


def abc_run(n: int, seed: int, max_seconds: float) -> dict:
    model = RankTwoRNN(num_neurons=n)
    result = smc_abc(model.simulate_features, model.prior, X_O, key=jax.random.key(seed), population_size=1_000,
                     minimum_epsilon=0.5, max_populations=200, min_acceptance_rate=1e-6, max_seconds=max_seconds,
                     batch_size=4_000, progress=False)
    pops = result.populations
    return {"method": "smc-abc", "neurons": n, "dim": 4 * n, "seed": seed, "converged": result.converged,
            "populations": len(pops), "stop_reason": result.stop_reason, "epsilon": result.epsilon,
            "seconds_to_convergence": pops[-1].seconds if result.converged else None,
            "simulations_to_convergence": result.num_simulations if result.converged else None,
            "seconds_spent": pops[-1].seconds, "simulations_spent": result.num_simulations,
            "trace": [{"epsilon": p.epsilon, "acceptance_rate": p.acceptance_rate, "seconds": p.seconds,
                       "simulations": p.num_simulations} for p in pops]}


RUNNERS = {"epi": epi_run, "snpe": snpe_run, "smc-abc": abc_run}


def method_of(run: dict) -> str:
    return run.get("method", "epi")  # runs recorded before the comparison are EPI's


def summarise(runs: list[dict]) -> dict:
    out = {}
    for method in METHODS:
        part = summarise_method([r for r in runs if method_of(r) == method], epi=method == "epi")
        if part:
            out[method] = part
    return out


def summarise_method(runs: list[dict], epi: bool) -> dict:
    out = {}
    for n in sorted({r["neurons"] for r in runs}):
        rows = [r for r in runs if r["neurons"] == n]
        t = np.array([r["seconds_to_convergence"] for r in rows if r["converged"]], float)
        row = {
            "runs": len(rows), "converged": int(t.size),
            "seconds_mean": float(t.mean()) if t.size else None, "seconds_std": float(t.std()) if t.size else None,
            "simulations_mean": float(np.mean([r["simulations_to_convergence"] for r in rows if r["converged"]]))
            if t.size else None,
        }
        if epi:
            row.update({
                "predictive_mean_seconds_mean": float(np.mean([r["predictive_mean_seconds"] for r in rows
                                                               if r["predictive_mean_seconds"] is not None])),
                "published_seconds_mean_std": PUBLISHED.get(n),
                "goal_seconds": GOALS.get(n),
                "goal_met": None if n not in GOALS or not t.size else bool(t.mean() <= GOALS[n] and t.size == len(rows)),
            })
        else:
            row["unconverged_seconds_spent"] = [r["seconds_spent"] for r in rows if not r["converged"]]
        out[str(n)] = row
    return out


def figure(summaries: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summaries["epi"]
    ns = sorted(int(n) for n in summary)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    ours = [summary[str(n)] for n in ns]
    ax.errorbar([4 * n for n in ns], [s["seconds_mean"] for s in ours], [s["seconds_std"] for s in ours],
                marker="o", color="tab:blue", label="neurosbi EPI, full convergence")
    ax.plot([4 * n for n in ns], [s["predictive_mean_seconds_mean"] for s in ours], marker="o", ls=":", color="tab:orange",
            label="neurosbi EPI, predictive mean within 0.5")
    axes[1].plot([4 * n for n in ns], [s["simulations_mean"] for s in ours], marker="o", label="EPI, full convergence")
    for method, marker, color in (("snpe", "^", "tab:purple"), ("smc-abc", "v", "tab:green")):
        part = summaries.get(method, {})
        done = sorted(int(n) for n in part if part[n]["converged"])
        if done:
            ax.errorbar([4 * n for n in done], [part[str(n)]["seconds_mean"] for n in done],
                        [part[str(n)]["seconds_std"] for n in done], marker=marker, color=color, label=f"neurosbi {method}")
            axes[1].plot([4 * n for n in done], [part[str(n)]["simulations_mean"] for n in done], marker=marker,
                         color=color, label=method)
        failed = sorted(int(n) for n in part if part[n]["converged"] < part[n]["runs"])
        if failed:
            ax.scatter([4 * n for n in failed], [max(part[str(n)]["unconverged_seconds_spent"]) for n in failed],
                       marker="x", color=color, s=60, zorder=5, label=f"{method}: unconverged (time spent)")
    pub = [n for n in ns if n in PUBLISHED]
    ax.errorbar([4 * n for n in pub], [PUBLISHED[n][0] for n in pub], [PUBLISHED[n][1] for n in pub], marker="s",
                color="tab:gray", label="published EPI, V100 + 32 cores")
    goal = [n for n in ns if n in GOALS]
    ax.scatter([4 * n for n in goal], [GOALS[n] for n in goal], marker="_", s=200, c="k", label="goal")
    ax.set(xscale="log", yscale="log", xlabel="|z| = 4N", ylabel="wall time to convergence (s)",
           title="Rank-2 RNN, stable amplification")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.set(xscale="log", yscale="log", xlabel="|z| = 4N", ylabel="simulations to convergence")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["epi"])
    parser.add_argument("--neurons", type=int, nargs="+", default=[2, 5, 10, 25, 50, 100, 250])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--max-seconds", type=float, default=1800.0,
                        help="wall-time budget of one SNPE or SMC-ABC run (EPI runs to convergence)")
    parser.add_argument("--skip-after-failure", action="store_true",
                        help="once a method converges in no seed at some N, record the larger N as skipped "
                             "instead of spending the budget on each (the problem only grows with N)")
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    done, skipped = previous.get("runs", []), previous.get("skipped", [])
    commands = previous.get("commands", [previous["command"]] if "command" in previous else [])
    command = " ".join(["python benchmarks/epi_rnn_scaling.py", *sys.argv[1:]])
    commands = commands + [command] if command not in commands else commands

    def write():
        result = {"benchmark": "epi_rnn_scaling", "machine": describe(), "commands": commands, "runs": done,
                  "skipped": skipped, "summary": summarise(done)}
        args.out.write_text(json.dumps(result, indent=1))

    for method in args.methods:
        failed_at = None
        for n in args.neurons:
            if failed_at is not None:
                if not any(s["method"] == method and s["neurons"] == n for s in skipped):
                    skipped.append({"method": method, "neurons": n, "max_seconds": args.max_seconds,
                                    "reason": f"converged in no seed at N = {failed_at}"})
                    write()
                continue
            for seed in args.seeds:
                if any(method_of(r) == method and r["neurons"] == n and r["seed"] == seed for r in done):
                    continue
                run = RUNNERS[method](n, seed, args.max_seconds)
                done.append(run)
                print(json.dumps({k: run.get(k) for k in ("method", "neurons", "seed", "converged",
                                                          "seconds_to_convergence")}), file=sys.stderr, flush=True)
                write()
            rows = [r for r in done if method_of(r) == method and r["neurons"] == n and r["seed"] in args.seeds]
            if args.skip_after_failure and rows and not any(r["converged"] for r in rows):
                failed_at = n
    if args.figure:
        figure(summarise(done), args.figure)
    print(json.dumps(summarise(done), indent=1))


if __name__ == "__main__":
    main()
