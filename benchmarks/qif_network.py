"""QIF network (10^4 neurons, 100 s) wall time, and its agreement with the MPR mean field.

Goal (issue 4): 10^4 all-to-all neurons for 100 s in under 2 minutes on 2 CPU cores. The run is one
network at the published truth (Δ 0.7, η −4.6, J 14.5, step current 3 on [30, 60)), Euler at 0.1 ms;
compile time is reported apart from run time. The same protocol through the deterministic mean field
gives the window means of rate and potential to compare, the lag of the network after the stimulus
onset (the peak of the cross-correlation of the rates over [30, 60); negative: the network runs ahead) and a figure of both.

    python benchmarks/qif_network.py [--neurons 10000] [--duration 100] [--repeats 3] \
        [--figure benchmarks/results/qif_network.png] > benchmarks/results/qif_network.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from _machine import describe  # noqa: E402

from neurosbi.misspecification.cross_scale import xcorr_lag  # noqa: E402
from neurosbi.models import QIFNetwork  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()

    d = args.duration
    net = QIFNetwork(n_neurons=args.neurons, duration=d, t_on=0.3 * d, t_off=0.6 * d)
    theta = jnp.asarray([net.default_truth], jnp.float32)
    run = jax.jit(net.simulate)
    start = time.perf_counter()
    micro = np.asarray(run(jax.random.key(0), theta))[0]
    first = time.perf_counter() - start
    times = []
    for i in range(args.repeats):
        start = time.perf_counter()
        np.asarray(run(jax.random.key(i), theta))
        times.append(time.perf_counter() - start)
    macro = np.asarray(jax.jit(net.mean_field().simulate)(jax.random.key(0), theta))[0]

    n = micro.shape[-1]
    windows = {"rest": (0.05, 0.3), "stim": (0.35, 0.6), "post": (0.65, 1.0)}
    agreement = {}
    for name, (a, b) in windows.items():
        s = slice(int(a * n), int(b * n))
        agreement[name] = {
            "rate_network": float(micro[1, s].mean()), "rate_mean_field": float(macro[1, s].mean()),
            "v_network": float(micro[0, s].mean()), "v_mean_field": float(macro[0, s].mean()),
        }
    stim = slice(int(0.3 * n), int(0.6 * n))
    lag = xcorr_lag(macro[1, stim], micro[1, stim], net.record_step)  # > 0: the network lags
    result = {
        "benchmark": "qif_network",
        "neurons": args.neurons, "duration": d, "time_step": net.time_step,
        "compile_and_first_run_s": first, "run_s": times, "run_s_median": float(np.median(times)),
        "goal_s": 120.0, "goal_met": bool(np.median(times) < 120.0),
        "neuron_steps_per_second": args.neurons * d / net.time_step / float(np.median(times)),
        "agreement_with_mean_field": agreement,
        "rate_correlation_stimulus_window": float(np.corrcoef(micro[1, stim], macro[1, stim])[0, 1]),
        "network_delay_after_onset_s": lag,  # < 0: the network runs ahead
        "machine": describe(),
        "command": "python " + " ".join(sys.argv),
    }
    print(json.dumps(result, indent=2))
    if args.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = np.arange(n) * net.record_step
        fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
        for ax, c, label in zip(axes, (1, 0), ("rate r", "mean potential v")):
            ax.plot(t, micro[c], lw=0.5, label=f"QIF network, N = {args.neurons}")
            ax.plot(t, macro[c], lw=0.8, label="MPR mean field")
            ax.set_ylabel(label)
        axes[0].legend(loc="upper right")
        axes[0].set_title(f"{args.neurons} QIF neurons, {d:g} s in {np.median(times):.1f} s on this machine")
        axes[1].set_xlabel("time")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)


if __name__ == "__main__":
    main()
