"""Pyloric network, 31 parameters, fitted to preparation 845_082_0044 (Gonçalves et al. 2020, Fig. 5).

Sequential NPE (truncated, ``--method tsnpe``, or APT, ``--method apt``) with a stated simulation
budget, later rounds restricted to the region a classifier predicts to give valid (pyloric-defined)
features, every simulation screened by a 4 s pilot run (``Pyloric.screen_ms``); then, at the
observation:

- the share of posterior samples whose simulated rhythm is pyloric-like with all 15 rhythm features
  within 2 experimental standard deviations of the observation (goal: >= 70 % with <= 200k
  simulations; the published result used 174k valid simulations), for the posterior as trained and
  for it restricted to where a classifier of all the campaign's simulations predicts valid rhythms;
- the "no islands" result: a high-probability path between two distant posterior samples, its log
  density against the straight line and against the posterior's own 5 % quantile, and the share of
  points along it whose simulated rhythm is close as above.

    python benchmarks/pyloric_posterior.py [--rounds 10000 8000 8000 8000] [--method apt] [--restrict-keep 0.9] [--eval 500] \
        [--bank-dir DIR] > benchmarks/results/pyloric_posterior.json

With ``--bank-dir`` an interrupted campaign resumes: rerun the same command.

Writes ``pyloric_path.png`` next to the JSON (``--figure``).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402
from _pyloric import rhythm_closeness  # noqa: E402

setup_devices()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from neurosbi import priors  # noqa: E402
from neurosbi.diagnostics import high_probability_path  # noqa: E402
from neurosbi.inference import NPEConfig, fit_validity, restricted_posterior_sample, sequential_npe  # noqa: E402
from neurosbi.inference.snpe import RESTRICT_KEEP  # noqa: E402
from neurosbi.models.pyloric import Pyloric  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, nargs="+", default=[10_000, 8_000, 8_000, 8_000])
    p.add_argument("--eval", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default="benchmarks/results/pyloric_path.png")
    p.add_argument("--bank-dir", default=None, help="keep each round's bank here (resumable)")
    p.add_argument("--duration", type=float, default=11_000.0, help="ms; shorter only for a smoke test")
    p.add_argument("--one-device", action="store_true")
    p.add_argument("--method", default="tsnpe", choices=["tsnpe", "apt"])
    p.add_argument("--screen-ms", type=float, default=4000.0, help="pilot run before finishing (0: no screening)")
    p.add_argument("--progress", action="store_true", help="progress bars and per-round lines on stderr")
    p.add_argument("--check", type=int, default=200, help="posterior draws simulated after each round (0: none)")
    p.add_argument("--restrict-keep", type=float, default=RESTRICT_KEEP,
                   help="share of valid parameters the validity restriction keeps (sequential_npe restrict_keep)")
    p.add_argument("--stop-at", type=float, default=0.75,
                   help="stop the rounds once this share of the --check draws is close (1: never)")
    a = p.parse_args()

    model = Pyloric(duration=a.duration, screen_ms=a.screen_ms or None)
    flagged = Pyloric(duration=a.duration, pyloric_flag=True, screen_ms=None)  # same dynamics, + the pyloric-like flag, for evaluation
    x_o = model.observation
    key = jax.random.key(a.seed)
    k_seq, k_eval, k_path = jax.random.split(key, 3)
    config = NPEConfig(flow="nsf", hidden_features=100, support="logit")
    # the goal's measure after each round; kept next to the banks so a resumed campaign keeps earlier rounds'
    checks_path = Path(a.bank_dir) / "checks.json" if a.bank_dir else None
    per_round = json.loads(checks_path.read_text()) if checks_path and checks_path.exists() else []

    def check(report, posterior):  # the goal's measure after each round, on --check draws
        if not a.check:
            return False
        k = jax.random.fold_in(k_eval, 100 + report.round)
        draws = np.asarray(posterior.sample(k, a.check, jnp.asarray(x_o)))
        valid, pyl, close = rhythm_closeness(flagged, draws, jax.random.fold_in(k, 1))
        per_round[:] = [c for c in per_round if c["round"] != report.round]
        per_round.append({"round": report.round, "num_simulations": int(sum(a.rounds[: report.round])),
                          "valid": float(valid.mean()), "pyloric_like": float(pyl.mean()),
                          "pyloric_and_within_2_std": float(close.mean())})
        print(json.dumps(per_round[-1]), file=sys.stderr, flush=True)
        if checks_path:
            checks_path.write_text(json.dumps(per_round, indent=1))
        return bool(close.mean() >= a.stop_at)

    t0 = time.perf_counter()
    result = sequential_npe(model, x_o, key=k_seq, rounds=len(a.rounds), simulations_per_round=a.rounds,
                            method=a.method, config=config, restrict=True, restrict_keep=a.restrict_keep, progress=a.progress,
                            bank_dir=a.bank_dir, callback=check)
    infer_s = time.perf_counter() - t0
    posterior = result.posterior

    samples = np.asarray(posterior.sample(k_eval, a.eval, jnp.asarray(x_o)))
    valid, pyl, close = rhythm_closeness(flagged, samples, jax.random.fold_in(k_eval, 1))
    # the same posterior restricted to where a classifier of all the campaign's simulations predicts valid
    # rhythms (keeping 99 % of valid parameters): the posterior has no mass where circuits are not pyloric
    keep = 0.99
    validity = fit_validity(result.theta, result.valid, jax.random.fold_in(k_eval, 2), keep_valid=keep)
    restricted = restricted_posterior_sample(posterior, jnp.asarray(x_o), jax.random.fold_in(k_eval, 10), a.eval,
                                             validity.accept)
    r_valid, r_pyl, r_close = rhythm_closeness(flagged, restricted, jax.random.fold_in(k_eval, 3))

    # the path between the densest of 2,000 samples and the most distant of the denser half
    log_prob = posterior.log_prob_fn(jnp.asarray(x_o))
    ref = np.asarray(posterior.sample(jax.random.fold_in(k_path, 0), 2_000, jnp.asarray(x_o)))
    lp = np.asarray(log_prob(jnp.asarray(ref)))
    low, high = priors.bounds(model.prior)
    width = high - low
    start = ref[np.argmax(lp)]
    dense = ref[lp >= np.median(lp)]
    end = dense[np.argmax(np.sum(((dense - start) / width) ** 2, axis=1))]
    path = high_probability_path(log_prob, start, end, low=low, high=high, num_points=20, steps=800)
    repeats = 4
    at = np.repeat(path.points, repeats, axis=0)
    _, path_pyl, path_close = rhythm_closeness(flagged, at, jax.random.fold_in(k_path, 1))
    line = np.linspace(0, 1, 20)[:, None] * (end - start) + start
    _, _, line_close = rhythm_closeness(flagged, np.repeat(line, repeats, axis=0), jax.random.fold_in(k_path, 2))
    q05 = float(np.quantile(lp, 0.05))

    if a.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
        s = np.linspace(0, 1, len(path.log_prob))
        ax[0].plot(s, path.log_prob, label="high-probability path")
        ax[0].plot(s, path.straight_log_prob, label="straight line")
        ax[0].axhline(q05, color="gray", ls=":", label="5 % quantile of posterior samples")
        ax[0].set(xlabel="position along path", ylabel="log posterior density")
        ax[0].legend(fontsize=8)
        ax[1].plot(s, path_close.reshape(-1, repeats).mean(1), "o-", label="path")
        ax[1].plot(s, line_close.reshape(-1, repeats).mean(1), "s--", label="straight line")
        ax[1].set(xlabel="position along path", ylabel="share of runs pyloric and within 2 std", ylim=(-0.05, 1.05))
        ax[1].legend(fontsize=8)
        fig.suptitle("Pyloric posterior at prep 845_082_0044: high-probability path between two posterior samples")
        fig.tight_layout()
        fig.savefig(a.figure, dpi=110)

    # a factor of two or more between the ends: conductances directly, synapses (ln g) by ln 2
    ratio = np.abs(end - start) / np.maximum(np.minimum(np.abs(end), np.abs(start)), 1e-9)
    ratio[24:] = np.abs(end[24:] - start[24:]) / np.log(2.0)
    out = {
        "benchmark": "pyloric_posterior", "machine": describe(),
        "method": a.method, "restrict_keep": a.restrict_keep, "screen_ms": model.screen_ms if model.screens else None,
        "budget": {"rounds": a.rounds, "total_simulations": int(sum(r.num_simulations for r in result.rounds)),
                   "valid_simulations": int(result.valid.sum()), "infer_s": infer_s},
        "after_each_round": per_round,
        "rounds": [{k: v for k, v in r.__dict__.items() if k not in ("posterior_mean", "posterior_std")}
                   for r in result.rounds],
        "flow": config.__dict__,
        "posterior_predictive": {"num": a.eval, "valid": float(np.mean(valid)), "pyloric_like": float(pyl.mean()),
                                 "pyloric_and_within_2_std": float(close.mean())},
        "posterior_predictive_restricted": {
            "num": int(len(restricted)), "classifier_keeps_valid": keep,
            "posterior_share_accepted": float(np.mean(validity.accept(samples))),
            "valid": float(np.mean(r_valid)), "pyloric_like": float(r_pyl.mean()),
            "pyloric_and_within_2_std": float(r_close.mean())},
        "goal_share_within_2_std": 0.70, "goal_met": bool(close.mean() >= 0.70 and sum(r.num_simulations for r in result.rounds) <= 200_000),
        "path": {
            "num_points": len(path.points), "runs_per_point": repeats,
            "min_log_prob_path": float(path.log_prob.min()),
            "min_log_prob_straight_line": float(path.straight_log_prob.min()),
            "posterior_log_prob_quantile_05": q05,
            "share_close_along_path": float(path_close.mean()),
            "share_close_along_straight_line": float(line_close.mean()),
            "share_pyloric_along_path": float(path_pyl.mean()),
            "ends_differ_by_factor_2_or_more_in": [n for n, r in zip(model.param_names, ratio) if r >= 1.0],
            "start": dict(zip(model.param_names, start.tolist())), "end": dict(zip(model.param_names, end.tolist())),
        },
    }
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
