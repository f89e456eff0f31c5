"""Misspecification detection on Hodgkin–Huxley: type-I error and power of each test, against sbi's MMD test.

Well-specified observations are prior-predictive simulations of the model the tests know. Misspecified
ones are simulated at prior draws and then changed the way recordings differ from the model:
``offset`` (a DC electrode offset, mV), ``white`` (white measurement noise, mV per sample), ``colored``
(Ornstein–Uhlenbeck measurement noise with a 5 ms time constant, stationary sd in mV), ``artifacts``
(a fraction of samples hit by +40 mV artifacts), and ``amplitude`` (the step current larger by this
fraction than the model's protocol: a mismatched protocol, not a recording artefact).

Every test sees the same reference simulations and the same features (the 7 published ones):
ours (``neurosbi.diagnostics.misspecification``) in z-scored feature space (``mmd``), in the NPE's
learned space (``mmd_summary``: the posterior mean), the density test (``density``), and the verdict
of ``check_observation`` (Bonferroni over the three, ``verdict``); sbi's ``calc_misspecification_mmd``
rule in x space (``sbi_mmd``: raw features, 1000 reference rows, median-heuristic bandwidth from the
observation's distances; its null — which for one observation does not depend on the observation —
is drawn once with sbi's ``calculate_baseline_mmd`` and shared by all observations).

``power`` is the share of rejections at the nominal α = 0.05; ``power_at_equal_type1`` rejects
below each test's empirical 5 % quantile of p-values on the well-specified observations, so that
all tests run at the same measured type-I error.

    python benchmarks/misspec_detection.py > benchmarks/results/misspec_detection_hh.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402

ALPHA = 0.05
STRENGTHS = {"offset": [1.0, 2.0, 4.0], "white": [0.5, 1.0, 2.0], "colored": [0.25, 0.5, 1.0],
             "artifacts": [0.0005, 0.001, 0.003], "amplitude": [0.1, 0.2, 0.4]}


def perturb(traces, kind, strength, key, dt):
    if kind == "offset":
        return traces + strength
    if kind == "white":
        return traces + strength * np.asarray(jax.random.normal(key, traces.shape))
    if kind == "colored":
        tau = 5.0
        a = np.exp(-dt / tau)
        eps = np.asarray(jax.random.normal(key, traces.shape)) * strength * np.sqrt(1 - a**2)
        ou = np.zeros_like(traces)
        ou[..., 0] = strength * np.asarray(jax.random.normal(jax.random.fold_in(key, 1), traces.shape[:-1]))
        for t in range(1, traces.shape[-1]):
            ou[..., t] = a * ou[..., t - 1] + eps[..., t]
        return traces + ou
    if kind == "artifacts":
        hit = np.asarray(jax.random.uniform(key, traces.shape)) < strength
        return traces + 40.0 * hit
    raise ValueError(kind)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num-reference", type=int, default=20_000)
    p.add_argument("--num-null-obs", type=int, default=300, help="well-specified observations")
    p.add_argument("--num-obs", type=int, default=100, help="observations per perturbation and strength")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default=None)
    p.add_argument("--one-device", action="store_true")
    a = p.parse_args()
    if a.num_reference < 8000:  # half fits the density and NPE; the tests take 3000 reference + null rows from the rest
        p.error(f"--num-reference must be at least 8000, got {a.num_reference}")
    setup_devices()
    import torch
    from sbi.diagnostics.misspecification import calculate_baseline_mmd, compute_rbf_mmd_median_heuristic

    from neurosbi import models, simulate
    from neurosbi.diagnostics.misspecification import MisspecificationReport, TestResult, density_test, mmd_test
    from neurosbi.inference import fit_npe
    from neurosbi.inference.density import fit_density
    from neurosbi.models import simulate_traces
    from neurosbi.workflow import npe_config_for

    t_start = time.perf_counter()
    key = jax.random.key(a.seed)
    k_ref, k_fit, k_npe, k_obs, k_sbi, k_sum = jax.random.split(key, 6)
    model = models.get("hh")
    config = npe_config_for(model)
    bank = simulate(model, a.num_reference, k_ref, progress=False)
    x = bank.x[bank.valid]
    half = len(x) // 2
    fit_part, test_part = x[:half], x[half:]
    t0 = time.perf_counter()
    density, dhist = fit_density(fit_part, key=k_fit, config=config, progress=False)
    density_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    posterior, _ = fit_npe(bank.theta[bank.valid][:half], fit_part, model.prior, key=k_npe, config=config,
                           param_names=model.param_names, progress=False)
    npe_s = time.perf_counter() - t0
    s_ref = np.asarray(posterior.summary(test_part[:3000], k_sum))

    torch.manual_seed(a.seed)
    x_sbi = torch.as_tensor(test_part[:4000], dtype=torch.float32)
    t0 = time.perf_counter()
    sbi_null = calculate_baseline_mmd(1, x_sbi, n_shuffle=1000, max_samples=1000).numpy()
    sbi_null_s = time.perf_counter() - t0

    def features_of(kind, strength, n, key):
        k_theta, k_sim, k_pert = jax.random.split(key, 3)
        theta = model.prior.sample(k_theta, (n,))
        sim_model = models.get("hh", amplitude=model.amplitude * (1 + strength)) if kind == "amplitude" else model
        traces = np.asarray(simulate_traces(sim_model, k_sim, jnp.asarray(theta, jnp.float32)))
        if kind not in ("none", "amplitude"):
            traces = perturb(traces, kind, strength, k_pert, model.time_step)
        feats = np.asarray(model.features(jnp.asarray(traces, jnp.float32)))
        return feats[np.all(np.isfinite(feats), axis=1)]

    def pvalues(obs, key):
        summaries = np.asarray(posterior.summary(obs, jax.random.fold_in(key, 1)))
        out = {"mmd": [], "mmd_summary": [], "density": [], "sbi_mmd": []}
        for i, o in enumerate(obs):
            k = jax.random.fold_in(key, i)
            out["mmd"].append(mmd_test(o, test_part[:3000], k).pvalue)
            out["mmd_summary"].append(mmd_test(summaries[i], s_ref, k).pvalue)
            out["density"].append(density_test(o, density, test_part[3000:6000]).pvalue)
            stat = compute_rbf_mmd_median_heuristic(torch.as_tensor(o[None]), x_sbi[:1000]).item()
            out["sbi_mmd"].append(1 - float(np.mean(sbi_null < stat)))
        out = {k: np.array(v) for k, v in out.items()}
        out["verdict"] = np.array([  # the rule of check_observation's verdict, on these three tests
            MisspecificationReport([TestResult(t, 0.0, out[t][i], 0) for t in ("mmd", "mmd_summary", "density")],
                                   [], ALPHA, 0).pvalue for i in range(len(obs))])
        return out

    t0 = time.perf_counter()
    null_obs = features_of("none", 0.0, a.num_null_obs, jax.random.fold_in(k_obs, 0))
    null_p = pvalues(null_obs, jax.random.fold_in(k_obs, 1))
    tests = list(null_p)
    thresholds = {t: float(np.quantile(null_p[t], ALPHA)) for t in tests}
    type1 = {t: float(np.mean(null_p[t] < ALPHA)) for t in tests}
    se = float(np.sqrt(ALPHA * (1 - ALPHA) / len(null_obs)))
    rows = []
    for kind, strengths in STRENGTHS.items():
        for j, s in enumerate(strengths):
            k = jax.random.fold_in(k_obs, 100 + 10 * list(STRENGTHS).index(kind) + j)
            obs = features_of(kind, s, a.num_obs, k)
            pv = pvalues(obs, jax.random.fold_in(k, 1))
            rows.append({"perturbation": kind, "strength": s, "num_obs": len(obs),
                         "power": {t: float(np.mean(pv[t] < ALPHA)) for t in tests},
                         "power_at_equal_type1": {t: float(np.mean(pv[t] < thresholds[t])) for t in tests}})
            print(json.dumps(rows[-1]), file=sys.stderr)
    result = {
        "benchmark": "misspec_detection_hh", "machine": describe(), "alpha": ALPHA,
        "num_reference": a.num_reference, "num_null_obs": len(null_obs), "num_obs": a.num_obs,
        "type1_error": type1, "type1_standard_error": se, "empirical_thresholds": thresholds,
        "rows": rows,
        "mean_power_at_equal_type1": {t: float(np.mean([r["power_at_equal_type1"][t] for r in rows])) for t in tests},
        "timings_s": {"density_fit": density_s, "density_epochs": dhist.epochs, "npe_fit": npe_s,
                      "sbi_null": sbi_null_s, "tests": time.perf_counter() - t0,
                      "total": time.perf_counter() - t_start},
    }
    print(json.dumps(result, indent=1))
    if a.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(STRENGTHS), figsize=(4 * len(STRENGTHS), 3.4), sharey=True)
        for ax, kind in zip(axes, STRENGTHS):
            sub = [r for r in rows if r["perturbation"] == kind]
            for t in tests:
                ax.plot([r["strength"] for r in sub], [r["power_at_equal_type1"][t] for r in sub], "o-", label=t)
            ax.set_title(kind)
            ax.set_xlabel("strength")
            ax.set_ylim(0, 1.02)
        axes[0].set_ylabel("power at equal type-I error (5 %)")
        axes[-1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.figure, dpi=120)


if __name__ == "__main__":
    main()
