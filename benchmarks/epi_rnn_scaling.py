"""EPI wall time on the rank-2 RNN as the network grows (Bittner et al. 2021, Fig. 2; reference §1.6).

For each N and seed: EPI with the paper's settings (real NVP, 3 couplings, 2 x 100 units, n = 200,
c0 = 1e3, beta = 4, 500 iterations per epoch, 200 test batches), timed from the flow's construction
(the Gaussian initialisation included, as in the paper) to
- full constraint convergence (every constraint passes the test; the paper's blue line), and
- the paper's looser criterion: the first epoch whose predictive mean of (Re λ₁, λ₁ˢ) lies within 0.5
  (Euclidean) of (0.5, 1.5).
Simulations are counted as the paper does (batch × iterations; the test batches reported apart).

Published (V100 initialisation + 32-core CPU), mean of 5 seeds to full convergence: N = 2: 15.6 s,
5: 16.1, 10: 29.8, 25: 149.7, 50: 696.0, 100: 5,027.8, 250: 70,892.8 s. Goal here (2 CPU cores):
N = 50 <= 3 min, N = 100 <= 10 min, N = 250 <= 2 h.

Each finished run is written to the output at once; re-running the same command skips the runs
already there (resume).

    python benchmarks/epi_rnn_scaling.py --out benchmarks/results/epi_rnn_scaling.json \
        [--neurons 2 5 10 25 50 100 250] [--seeds 1 2 3 4 5] [--figure benchmarks/results/epi_rnn_scaling.png]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import jax  # noqa: E402
from _machine import describe  # noqa: E402

from neurosbi.inference import EPIConfig, FlowSpec, fit_epi  # noqa: E402
from neurosbi.models import RankTwoRNN  # noqa: E402

PUBLISHED = {2: (15.6, 6.0), 5: (16.1, 1.9), 10: (29.8, 6.0), 25: (149.7, 14.0), 50: (696.0, 161.3),
             100: (5027.8, 1606.2), 250: (70892.8, 14801.1)}
GOALS = {50: 180.0, 100: 600.0, 250: 7200.0}


def paper_config(model) -> EPIConfig:
    d = dict(model.epi_defaults)
    units = d.pop("hidden_units")
    return EPIConfig(**d, max_epochs=200, flow=FlowSpec(hidden_units=units))


def one_run(n: int, seed: int) -> dict:
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
        "neurons": n, "dim": 4 * n, "seed": seed, "converged": info["converged"],
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


def summarise(runs: list[dict]) -> dict:
    out = {}
    for n in sorted({r["neurons"] for r in runs}):
        rows = [r for r in runs if r["neurons"] == n]
        t = np.array([r["seconds_to_convergence"] for r in rows if r["converged"]], float)
        out[str(n)] = {
            "runs": len(rows), "converged": int(sum(r["converged"] for r in rows)),
            "seconds_mean": float(t.mean()) if t.size else None, "seconds_std": float(t.std()) if t.size else None,
            "simulations_mean": float(np.mean([r["simulations_to_convergence"] for r in rows if r["converged"]]))
            if t.size else None,
            "predictive_mean_seconds_mean": float(np.mean([r["predictive_mean_seconds"] for r in rows
                                                           if r["predictive_mean_seconds"] is not None])),
            "published_seconds_mean_std": PUBLISHED.get(n),
            "goal_seconds": GOALS.get(n),
            "goal_met": None if n not in GOALS or not t.size else bool(t.mean() <= GOALS[n] and len(t) == len(rows)),
        }
    return out


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(int(n) for n in summary)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ours = [summary[str(n)] for n in ns]
    ax.errorbar([4 * n for n in ns], [s["seconds_mean"] for s in ours], [s["seconds_std"] for s in ours],
                marker="o", label="neurosbi EPI, 2 CPU cores")
    pub = [n for n in ns if n in PUBLISHED]
    ax.errorbar([4 * n for n in pub], [PUBLISHED[n][0] for n in pub], [PUBLISHED[n][1] for n in pub], marker="s",
                label="published EPI, V100 + 32 cores")
    goal = [n for n in ns if n in GOALS]
    ax.scatter([4 * n for n in goal], [GOALS[n] for n in goal], marker="_", s=200, c="k", label="goal")
    ax.set(xscale="log", yscale="log", xlabel="|z| = 4N", ylabel="wall time to convergence (s)",
           title="Rank-2 RNN, stable amplification")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--neurons", type=int, nargs="+", default=[2, 5, 10, 25, 50, 100, 250])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()

    done = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    for n in args.neurons:
        for seed in args.seeds:
            if any(r["neurons"] == n and r["seed"] == seed for r in done):
                continue
            run = one_run(n, seed)
            done.append(run)
            print(json.dumps({k: run[k] for k in ("neurons", "seed", "converged", "seconds_to_convergence")}),
                  file=sys.stderr, flush=True)
            result = {"benchmark": "epi_rnn_scaling", "machine": describe(),
                      "command": "python benchmarks/epi_rnn_scaling.py --out " + str(args.out),
                      "runs": done, "summary": summarise(done)}
            args.out.write_text(json.dumps(result, indent=1))
    if args.figure:
        figure(summarise(done), args.figure)
    print(json.dumps(summarise(done), indent=1))


if __name__ == "__main__":
    main()
