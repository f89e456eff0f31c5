"""The Ray executor against the local one on this machine: 100k MPR simulations side by side.

Starts a local Ray cluster (`ray start --head`, one CPU per core), then runs, alternating in one invocation,
the user's command `neurosbi simulate montbrio --num N --json` with the local executor (every core as an XLA
host device) and with `--executor ray --address` that cluster (one worker actor holding every core), each into a fresh bank,
timed end to end (process start, compilation and writes included); then a Ray run during which one worker
busy with a chunk is killed (SIGKILL), and checks that its bank equals the uninterrupted ones. Prints JSON.

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
from neurosbi._ray import busy_workers  # noqa: E402

CLI = str(Path(sys.executable).parent / "neurosbi")


def run(out, n, extra=(), kill_after=None):
    killed = []

    def killer():
        start = time.monotonic()
        while not killed and time.monotonic() - start < 600:
            if time.monotonic() - start > kill_after:
                for pid in busy_workers()[:1]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
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


RAY = str(Path(sys.executable).parent / "ray")
PORT = "6393"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3, help="local and Ray runs, alternating")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    # a cluster already running, as on a real one (`ray start` on every node before the campaign)
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", PORT, "--num-cpus", str(os.cpu_count()),
                    "--include-dashboard=false"], capture_output=True, check=True)
    address = ["--executor", "ray", "--address", "auto"]  # the cluster just started (its auth token found)
    try:
        local, ray = [], []
        for k in range(a.rounds):
            local.append(run(tmp / f"local{k}.zarr", a.num))
            ray.append(run(tmp / f"ray{k}.zarr", a.num, address))
        killed = run(tmp / "killed.zarr", a.num, address, kill_after=15.0)
        banks = {k: load_bank(tmp / f"{k}.zarr")[0] for k in ("local0", "ray0", "killed")}
        same = {k: bool(np.array_equal(banks[k].theta, banks["local0"].theta)
                        and np.array_equal(banks[k].x, banks["local0"].x, equal_nan=True)
                        and len(banks[k]) == a.num) for k in ("ray0", "killed")}
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    local_s, ray_s = (float(np.median([r["wall_s"] for r in runs])) for runs in (local, ray))
    print(json.dumps({"machine": describe(), "num_simulations": a.num, "cluster": "started before the runs",
                      "local": local, "ray": ray, "ray_with_a_worker_killed": killed,
                      "ray_over_local_throughput": local_s / ray_s,
                      "note": "end to end (process start, compile, writes); median wall time over the rounds",
                      "banks_equal_to_local": same}, indent=2))


if __name__ == "__main__":
    main()
