"""NPE trained by streaming from a bank larger than memory, against in-memory training, on MPR features.

    python benchmarks/stream_training.py --bank BANK --num 20000000 --memory-rows 2000000 \
        > benchmarks/results/stream_training.json

1. The bank: `neurosbi simulate montbrio --num N --out BANK` (resumable; skipped when BANK is complete).
2. In a child process, `fit_npe_stream` on the whole bank for `--epochs` epochs: time per epoch, training
   samples per second, the statistics pass, peak resident memory (the child's `ru_maxrss`).
3. In a child process, `fit_npe` on the bank's first `--memory-rows` rows held in memory: the same figures.

Both train the same flow (MAF, 5 transforms of 50 units, batch 256) with the same key. An epoch is one
pass over the training rows plus the validation loss; the first epoch includes compilation, so the
per-epoch figure is the mean of the later ones. Prints JSON.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

CLI = str(Path(sys.executable).parent / "neurosbi")


def child(mode: str, bank: str, rows: int, epochs: int) -> dict:
    import jax
    import numpy as np
    import zarr

    from neurosbi import NPEConfig, fit_npe, fit_npe_stream
    from neurosbi.models import Montbrio

    prior = Montbrio().prior
    config = NPEConfig(max_epochs=epochs, patience=epochs + 1, lr_patience=epochs + 1)
    start = time.perf_counter()
    if mode == "stream":
        _, history = fit_npe_stream(bank, prior, key=jax.random.key(0), config=config, progress=False)
    else:
        root = zarr.open_group(bank, mode="r")
        theta, x = np.asarray(root["theta"][:rows]), np.asarray(root["x"][:rows])
        read_s = time.perf_counter() - start
        _, history = fit_npe(theta, x, prior, key=jax.random.key(0), config=config, progress=False)
    total = time.perf_counter() - start
    later = history.epoch_seconds[1:] or history.epoch_seconds
    per_epoch = float(np.mean(later))
    out = {"mode": mode, "num_train": history.num_train, "num_validation": history.num_validation,
           "num_invalid_dropped": history.num_invalid_dropped, "epochs": history.epochs,
           "epoch_seconds": history.epoch_seconds, "seconds_per_epoch": per_epoch,
           "train_samples_per_second": history.num_train / per_epoch,
           "train_loss": history.train_loss, "validation_loss": history.validation_loss,
           "total_seconds": total, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if mode == "stream":  # before the first epoch: the statistics pass over the training chunks
        out["setup_seconds"] = total - sum(history.epoch_seconds)
    else:
        out["read_seconds"] = read_s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", required=True)
    parser.add_argument("--num", type=int, default=20_000_000, help="simulations in the bank")
    parser.add_argument("--memory-rows", type=int, default=2_000_000, help="rows of the in-memory training")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", choices=["stream", "memory"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.bank, args.memory_rows, args.epochs)))
        return

    start = time.perf_counter()
    sim = subprocess.run([CLI, "simulate", "montbrio", "--num", str(args.num), "--out", args.bank, "--json"],
                         capture_output=True, text=True, check=True)
    simulate = json.loads(sim.stdout.strip().splitlines()[-1])
    simulate["wall_s"] = time.perf_counter() - start
    disk = sum(f.stat().st_size for f in Path(args.bank).rglob("*") if f.is_file())
    runs = {}
    for mode in ("memory", "stream"):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--bank", args.bank, "--memory-rows",
                               str(args.memory_rows), "--epochs", str(args.epochs)],
                              capture_output=True, text=True, check=True)
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps({
        "machine": describe(),
        "command": " ".join(sys.argv),
        "bank": {"num_simulations": args.num, "disk_gib": disk / 2**30, "simulate": simulate},
        "in_memory": runs["memory"], "streamed": runs["stream"],
        "epoch_time_ratio": runs["stream"]["seconds_per_epoch"] / runs["stream"]["num_train"]
        / (runs["memory"]["seconds_per_epoch"] / runs["memory"]["num_train"]),
        "note": "epoch_time_ratio: streamed time per training sample over in-memory time per training sample",
    }, indent=2))


if __name__ == "__main__":
    main()
