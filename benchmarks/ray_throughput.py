"""The Ray executor against the local one on this machine: 100k MPR simulations side by side.

Runs, one after another in one invocation, the user's command `neurosbi simulate montbrio --num N --json`
with the local executor (every core as an XLA host device) and with `--executor ray` (a local Ray cluster,
one worker per core), each into a fresh bank, timed end to end (process start, compilation, cluster start
and writes included); then a third Ray run during which one worker busy with a chunk is killed (SIGKILL),
and checks that its bank equals the uninterrupted ones. Prints JSON.

    python benchmarks/ray_throughput.py > benchmarks/results/ray_throughput.json
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from neurosbi import load_bank  # noqa: E402

CLI = str(Path(sys.executable).parent / "neurosbi")


def run(out, n, extra=(), kill_after=None):
    killed = []

    def killer():
        start = time.monotonic()
        while not killed and time.monotonic() - start < 600:
            if time.monotonic() - start > kill_after:
                for entry in Path("/proc").iterdir():
                    if entry.name.isdigit():
                        try:
                            if (entry / "cmdline").read_bytes().startswith(b"ray::_chunk_task"):
                                os.kill(int(entry.name), signal.SIGKILL)
                                killed.append(int(entry.name))
                                break
                        except OSError:
                            pass
            time.sleep(0.05)

    thread = threading.Thread(target=killer) if kill_after is not None else None
    start = time.perf_counter()
    if thread:
        thread.start()
    proc = subprocess.run([CLI, "simulate", "montbrio", "--num", str(n), "--out", str(out), "--json", *extra],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    if thread:
        thread.join()
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "sims_per_second_end_to_end": n / wall, "killed_workers": len(killed), "stats": stats}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=100_000)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        local = run(tmp / "local.zarr", a.num)
        ray = run(tmp / "ray.zarr", a.num, ["--executor", "ray"])
        killed = run(tmp / "killed.zarr", a.num, ["--executor", "ray"], kill_after=20.0)
        banks = {k: load_bank(tmp / f"{k}.zarr")[0] for k in ("local", "ray", "killed")}
        same = {k: bool(np.array_equal(banks[k].theta, banks["local"].theta)
                        and np.array_equal(banks[k].x, banks["local"].x, equal_nan=True)
                        and len(banks[k]) == a.num) for k in ("ray", "killed")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"machine": describe(), "num_simulations": a.num, "local": local, "ray": ray,
                      "ray_with_a_worker_killed": killed,
                      "ray_over_local_throughput": local["wall_s"] / ray["wall_s"],
                      "banks_equal_to_local": same}, indent=2))


if __name__ == "__main__":
    main()
