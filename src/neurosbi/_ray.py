"""Simulation chunks on Ray workers: the engine behind ``simulate(..., executor="ray")``.

Ray does the distribution (scheduling, restarting a worker that died and retrying its calls, shipping
arguments); this module only maps neurosbi's chunks onto calls. Chunk ``i`` is one call; it draws everything from
``fold_in(key, i)`` through the same compiled chunk function as a local run, so the bank is the same bytes
whichever worker ran which chunk, in whatever order, retried or not. A worker is an actor made for the
campaign: it receives the model, key and layout once and keeps the compiled chunk function, so it compiles once.

With a bank on disk each call writes its own rows of the Zarr arrays (one Zarr chunk per call, so no two
calls touch the same file) and the driver alone marks chunk ``i`` done once the call has returned: a call
whose worker died is rerun by Ray (``MAX_RETRIES``) and rewrites the same bytes; a driver killed leaves
the chunks it had not marked to the next run of the same command. Every worker must therefore see the
bank's path (a shared file system on a cluster). Without a path the chunks travel back to the driver
through Ray's object store.

A worker is one Ray actor per node holding all the node's cores (the smallest node's count, on a mixed
cluster) with one XLA host device per core, so a chunk is spread over them exactly as the local executor
spreads it over this machine's cores. Measured on the 2-core machine (1,024-simulation MPR chunks): two
one-core processes finished 3.7 chunks/s together (0.54 s per chunk each) and compiled in 5.7 s side by side,
one process with two devices 4.2 chunks/s (0.24 s per chunk) after a 3.1 s compile. A chunk needs
``slice_size × cores`` simulations to keep every core busy.

An actor, not plain tasks, so that the next chunk can wait in the worker's own queue (``IN_FLIGHT`` calls
per actor) and start the moment the last one returns: with plain tasks and one in flight a worker sat idle
~46 ms per chunk for the round trip to the driver; with two in flight Ray started a second worker process
on the node for the queued task, which compiled again. A dead actor is restarted by Ray
(``max_restarts=-1``) and its unfinished calls retried (``MAX_RETRIES`` per call), so a killed worker costs a
recompile and its chunk, nothing else. A small second actor counts the calls that began a chunk;
``retries`` in the statistics is those attempts minus the chunks (a worker killed before its call's first
line is retried by Ray too, but not counted: it had lost no work).
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np

from ._errors import ExecutorError
from ._runtime import MACHINE_FLAGS

MAX_RETRIES = 3
# Calls queued on each worker actor: the one running and the next, which starts without a round trip.
IN_FLIGHT = 2
# The title Ray gives a worker process while it runs a chunk (tests and benchmarks find workers to kill by it).
BUSY_TITLE = "ray::_ChunkWorker.chunk"
INSTALL = "the Ray executor needs Ray: pip install 'neurosbi[ray]'"


def busy_workers() -> list[int]:
    """PIDs of the Ray workers on this machine running a chunk now (by their ``BUSY_TITLE``): the tests and
    benchmarks kill one to check that its chunk is retried."""
    from pathlib import Path

    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(BUSY_TITLE.encode()):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"executor='ray' but Ray is not installed; {INSTALL}") from None
    return ray


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast, with the fix, when nothing listens at a ``HOST:PORT`` (or ``ray://HOST:PORT``) address
    (Ray itself would retry for a minute and then raise a generic error)."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ExecutorError(
            f"no Ray cluster answers at {address} ({err}); start one there with `ray start --head --port {port}` "
            "or give the address `ray start` printed") from None


class _ChunkWorker:
    """The Ray actor of one node: runs one campaign's chunks one after another in one process.

    Everything fixed for the campaign (the model, the key, the chunk layout, the bank's path) arrives once, in
    the constructor, as bytes that are unpickled only after the environment is set (one XLA host device per
    core, the compile cache): setting it here rather than as a Ray ``runtime_env`` lets Ray take one of the
    idle workers it keeps started instead of starting a fresh process (on the 2-core Intel Xeon of an earlier
    session the two took the same time within the noise: 100k MPR, 31.8 s either way), and unpickling after it keeps JAX from being imported
    before the flags are read. A call then carries only the chunk's index (and its parameters, when given).
    Ray reruns the constructor when it restarts a killed actor, which compiles again. A process that had
    imported JAX before (an idle worker reused after other JAX work) keeps its devices: the bank is the same
    bytes on any number of devices, only slower, and ``devices_per_worker`` in the statistics shows it."""

    def __init__(self, env: dict, cores: int, campaign: bytes, attempts):
        os.environ.update(env)
        import pickle

        from ._runtime import use_all_cores

        use_all_cores(cores)  # this node's CPU decides its vector width, as the local executor's does

        import jax
        import jax.numpy as jnp

        from .simulate import _chunk_function

        (model, key_data, key_impl, self.chunk_size, theta_given, slice_size, screen, self.path,
         self.n) = pickle.loads(campaign)
        self.key = jax.random.wrap_key_data(jnp.asarray(key_data, jnp.uint32), impl=key_impl)
        self.run = _chunk_function(model, self.chunk_size, theta_given, slice_size, screen)
        self.attempts, self.arrays = attempts, None
        self.info = (os.getpid(), jax.local_device_count())

    def chunk(self, i: int, theta):
        """Chunk ``i``: ``(i, arrays or None, seconds, (pid, JAX devices))``; with a bank the rows go to it."""
        import jax.numpy as jnp

        from .simulate import write_chunk

        # counted without waiting for the reply (a round trip per chunk otherwise): an attempt killed from
        # here on is counted, as the call is on its way before the chunk starts
        self.attempts.start.remote(i)
        start = time.perf_counter()
        arrays = self.run(self.key, jnp.asarray(i, jnp.uint32), None if theta is None else jnp.asarray(theta))
        seconds = time.perf_counter() - start
        if self.path is None:
            return i, arrays, seconds, self.info
        if self.arrays is None:
            self.arrays = _open_bank(self.path)
        lo, hi = i * self.chunk_size, min((i + 1) * self.chunk_size, self.n)
        write_chunk(self.arrays, lo, hi, *arrays)
        return i, None, seconds, self.info


def _open_bank(path: str) -> dict:
    """The bank's arrays a worker writes its chunks into (opened on its first chunk, so that a bank the worker
    cannot see reaches the driver as that call's ``ExecutorError``)."""
    import zarr

    try:
        root = zarr.open_group(path, mode="r+")
    except (OSError, FileNotFoundError) as err:
        raise ExecutorError(f"worker {socket.gethostname()} cannot open the bank at {path} ({err}); with Ray "
                            "on several machines the bank must be on a file system every worker sees") from None
    return {name: root[name] for name in ("theta", "x", "screened")}


def run_chunks(model, key, todo, chunk_theta, *, chunk_size, slice_size, n, screen, path, address):
    """Run the chunks ``todo`` on one Ray actor per node (``IN_FLIGHT`` calls queued on each); yield
    ``(i, arrays or None, seconds)`` as each finishes, then ``(None, statistics, 0.0)``."""
    import jax

    ray = import_ray()
    started = False
    check_reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as err:
            if "auth" not in repr(err.__cause__).lower():
                raise
            raise ExecutorError(
                f"the Ray cluster at {address} refused this driver: it uses token authentication (the default of "
                "`ray start`). Set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to its token, or "
                "run on the head node with --address auto") from None
        started = True
    handles: list = []  # the actors this campaign started
    try:
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key_data, key_impl = np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
        else:  # a raw uint32 key
            key_data, key_impl = np.asarray(key), "threefry2x32"

        @ray.remote(num_cpus=0)
        class Attempts:
            def __init__(self):
                self.count: dict[int, int] = {}

            def start(self, i):
                self.count[i] = self.count.get(i, 0) + 1

            def total(self):
                return sum(self.count.values())

        attempts = Attempts.remote()
        handles.append(attempts)
        # one worker per node, holding all its cores, with one XLA host device per core: the local executor's
        # layout (module docstring). Nodes differ: a worker takes the smallest node's cores.
        cores = int(min(node["Resources"].get("CPU", 1) for node in ray.nodes()
                        if node["Alive"] and node["Resources"].get("CPU", 0) >= 1))
        # the driver's XLA flags but those of its machine: each worker sets its node's own (``use_all_cores``)
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not any(m in f for m in MACHINE_FLAGS)]
        env = {"XLA_FLAGS": " ".join(flags)}
        if os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # workers share the driver's persistent compile cache
            env["JAX_COMPILATION_CACHE_DIR"] = os.environ["JAX_COMPILATION_CACHE_DIR"]
        workers = max(int(ray.cluster_resources().get("CPU", 1)) // cores, 1)
        actor = ray.remote(num_cpus=cores, max_restarts=-1, max_task_retries=MAX_RETRIES)(_ChunkWorker)
        campaign = ray.cloudpickle.dumps((model, key_data, key_impl, chunk_size, chunk_theta(0) is not None,
                                          slice_size, screen, None if path is None else str(path), n))
        actors = [actor.remote(env, cores, campaign, attempts) for _ in range(workers)]
        handles.extend(actors)
        pending = iter(todo)
        in_flight: dict = {}  # call -> the actor running it
        pids: set[int] = set()
        fewest_devices = cores
        first = None  # (time, simulations) when the first chunk came back
        done_sims = 0
        start = time.perf_counter()

        def submit(worker):
            i = next(pending, None)
            if i is not None:
                ref = worker.chunk.remote(i, chunk_theta(i))
                in_flight[ref] = worker

        for _ in range(IN_FLIGHT):
            for worker in actors:
                submit(worker)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            ref = ready[0]
            worker = in_flight.pop(ref)
            try:
                i, arrays, seconds, (pid, devices) = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                cause = err.as_instanceof_cause()
                raise (cause if isinstance(cause, ExecutorError) else err) from None
            pids.add(pid)
            fewest_devices = min(fewest_devices, devices)
            done_sims += min((i + 1) * chunk_size, n) - i * chunk_size
            if first is None:  # the first chunk back: compiles and worker starts are behind
                first = (time.perf_counter(), done_sims)
            submit(worker)
            yield i, arrays, seconds
        end = time.perf_counter()
        wall = end - start
        # as the local executor's figure: the rate after the first chunk (its compile), here in wall time
        steady = (done_sims - first[1]) / (end - first[0]) if first is not None and end > first[0] else float("nan")
        retries = int(ray.get(attempts.total.remote())) - len(todo)
        yield None, {"num_workers": workers, "cores_per_worker": cores,
                     "devices_per_worker": fewest_devices, "worker_processes": len(pids), "retries": retries, "wall_s": wall,
                     "sims_per_second": steady}, 0.0
    finally:
        for handle in handles:  # an actor holds its node's cores until killed; the next campaign needs them
            ray.kill(handle)
        if started:
            ray.shutdown()
