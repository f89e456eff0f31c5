"""The cost model of a simulation campaign, from measurements on this machine, and its projections.

    python benchmarks/scaleout_cost.py > benchmarks/results/scaleout_cost.json

Measured here (each in its own process where a process start matters):
- `chunk_s`: one 1,024-simulation MPR chunk on this machine's cores, as a Ray worker (or the local executor)
  runs it: one process with an XLA host device per core; median of 8 chunks after the compile; and the
  compile itself (`compile_s`).
- `task_overhead_s`: what the Ray executor adds per chunk beyond the simulation: a campaign of a model whose
  simulation costs nothing (`x = theta`), 1,024-row chunks written to a bank, on a local cluster (one
  worker holding both cores): the campaign's wall time per chunk and worker after the first chunk (its
  `sims_per_second`: the call, the attempts counter, the worker's Zarr write, the driver's bookkeeping);
  `start_s` is the rest of the wall time (the driver process's start and imports, connect, worker start).
- `driver_s`: the driver's own time per chunk (the CPU time of the same campaign's `simulate` call, every
  thread of the driver process, imports excluded, / chunks): the ceiling on chunks per second, whatever the
  number of workers. Measured with one worker: the driver waits on 2 calls per worker, so with thousands of
  workers its per-chunk cost grows (not measured here).
- `write`: the bank's write throughput, one 1,024 × (3 + 34) float32 chunk per write into a local Zarr store.
Pyloric's chunk time comes from the committed `results/pyloric_throughput.json` (its compile alone takes
minutes, too long to repeat here).

Projection, for N simulations on W workers, each a node like this machine (its cores, one Ray worker holding
them all; 10 / 100 / 1,000 workers are that many times this machine's cores):
    wall = start + compile + max(ceil(N / 1024 / W) × (chunk_s + task_overhead_s), N / 1024 × driver_s)
with `start` the cluster join and worker start measured here. It assumes the workers' file system takes
W concurrent chunk writes (each a few hundred kB) at the per-write time measured here, and a cluster
already running (`ray start` on every node).
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

CHUNK = 1024
HERE = Path(__file__).parent


def chunk_time() -> dict:
    code = """
from neurosbi._runtime import use_all_cores
use_all_cores()
import json, time, jax, jax.numpy as jnp, numpy as np
from neurosbi.models import Montbrio
from neurosbi.simulate import _chunk_function
f = _chunk_function(Montbrio(), 1024, False, 512, True)
key = jax.random.key(0)
t = time.perf_counter(); jax.block_until_ready(f(key, jnp.asarray(0, jnp.uint32), None)); c = time.perf_counter() - t
ts = []
for i in range(1, 9):
    t = time.perf_counter(); jax.block_until_ready(f(key, jnp.asarray(i, jnp.uint32), None)); ts.append(time.perf_counter() - t)
print(json.dumps({"compile_s": c, "chunk_s": float(np.median(ts)), "chunk_s_all": ts, "devices": jax.local_device_count()}))
"""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the local layout: a device per core
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_time(tmp: Path) -> dict:
    import zarr

    from neurosbi.simulate import write_chunk

    root = zarr.open_group(str(tmp / "w.zarr"), mode="w")
    n = 64 * CHUNK
    arrays = {"theta": root.create_array("theta", shape=(n, 3), chunks=(CHUNK, 3), dtype="float32"),
              "x": root.create_array("x", shape=(n, 34), chunks=(CHUNK, 34), dtype="float32"),
              "screened": root.create_array("screened", shape=(n,), chunks=(CHUNK,), dtype="bool")}
    rng = np.random.default_rng(0)
    theta, x = rng.normal(size=(CHUNK, 3)).astype(np.float32), rng.normal(size=(CHUNK, 34)).astype(np.float32)
    start = time.perf_counter()
    for i in range(64):
        write_chunk(arrays, i * CHUNK, (i + 1) * CHUNK, theta, x, np.zeros(CHUNK, bool))
    per = (time.perf_counter() - start) / 64
    return {"seconds_per_chunk": per, "chunks_per_second": 1 / per,
            "megabytes_per_second": CHUNK * 37 * 4 / per / 1e6}


OVERHEAD = """
import json, sys, time, jax, numpy as np
from neurosbi import priors, simulate
from neurosbi.models import from_function
model = from_function(lambda k, th: th, priors.box_uniform([0.0] * 3, [1.0] * 3), name="free")
chunks = int(sys.argv[1])
start, cpu = time.perf_counter(), time.process_time()
bank = simulate(model, chunks * 1024, jax.random.key(0), path=sys.argv[2], chunk_size=1024, progress=False,
                executor="ray", address=sys.argv[3], load=False)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu  # the campaign's own, imports excluded
print(json.dumps({"wall_s": wall, "driver_cpu_s": cpu, "stats": bank.stats}))
"""


def ray_overhead(tmp: Path, chunks: int = 400) -> dict:
    port = "6391"
    subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", port, "--num-cpus", "2",
                    "--include-dashboard=false"], capture_output=True, check=True)
    try:
        runs = []
        for k in range(2):  # the second: workers already known to the cluster
            out = subprocess.run([sys.executable, "-c", OVERHEAD, str(chunks), str(tmp / f"o{k}.zarr"),
                                  "auto"], capture_output=True, text=True, check=True)  # token auth: found by auto
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
    last = runs[-1]
    workers = last["stats"]["num_workers"]
    overhead = CHUNK * workers / last["stats"]["sims_per_second"]  # per chunk and worker, after the first chunk
    return {"chunks": chunks, "runs": runs, "num_workers": workers, "task_overhead_s": overhead,
            "driver_s": last["driver_cpu_s"] / chunks,
            # what a campaign pays once: the driver's start and imports, Ray's connect, the worker's start and imports
            "start_s": last["wall_s"] - chunks * overhead / workers}


def project(chunk_s: float, overhead_s: float, driver_s: float, start_s: float, compile_s: float) -> list[dict]:
    rows = []
    for n in (10**6, 10**7, 10**8):
        for w in (10, 100, 1000):
            chunks = -(-n // CHUNK)
            compute = -(-chunks // w) * (chunk_s + overhead_s)
            driver = chunks * driver_s
            rows.append({"num_simulations": n, "workers": w, "wall_s": start_s + compile_s + max(compute, driver),
                         "bound": "driver" if driver > compute else "workers"})
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mpr = chunk_time()
        write = write_time(tmp)
        ray = ray_overhead(tmp)
    pyloric = json.loads((HERE / "results" / "pyloric_throughput.json").read_text())
    run = pyloric["neurosbi"][0]  # two-point noise, screened at the prior, both cores
    pyloric_chunk_s = CHUNK / run["sims_per_second"]  # on every core of this machine, as a worker here
    models = {"mpr": {"chunk_s": mpr["chunk_s"], "compile_s": mpr["compile_s"], "from": "measured here"},
              "pyloric": {"chunk_s": pyloric_chunk_s, "compile_s": run["compile_s"],
                          "from": "results/pyloric_throughput.json (screened prior draws, every core)"}}
    print(json.dumps({
        "machine": describe(), "command": " ".join(sys.argv), "chunk_size": CHUNK,
        "mpr_chunk": mpr, "write": write, "ray": ray, "models": models,
        "projection": {name: project(m["chunk_s"], ray["task_overhead_s"], ray["driver_s"], ray["start_s"],
                                     m["compile_s"]) for name, m in models.items()},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, indent=2))


if __name__ == "__main__":
    main()
