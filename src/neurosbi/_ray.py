"""Simulation chunks as Ray tasks: the engine behind ``simulate(..., executor="ray")``.

Ray does the distribution (scheduling, retrying a task whose worker died, shipping arguments); this module
only maps neurosbi's chunks onto tasks. Chunk ``i`` is one task; it draws everything from
``fold_in(key, i)`` through the same compiled chunk function as a local run, so the bank is the same bytes
whichever worker ran which chunk, in whatever order, retried or not. A worker keeps the campaign's compiled
chunk function between tasks (``_WORKER_FUNCTIONS``, keyed by a token per campaign), so it compiles once.

With a bank on disk each task writes its own rows of the Zarr arrays (one Zarr chunk per task, so no two
tasks touch the same file) and the driver alone marks chunk ``i`` done once the task has returned: a task
whose worker died is rerun by Ray (``MAX_RETRIES``) and rewrites the same bytes; a driver killed leaves
the chunks it had not marked to the next run of the same command. Every worker must therefore see the
bank's path (a shared file system on a cluster). Without a path the chunks travel back to the driver
through Ray's object store.

A worker is one process per node holding all the node's cores (the smallest node's count, on a mixed
cluster) with one XLA host device per core, so a chunk is spread over them exactly as the local executor
spreads it over this machine's cores. Measured on the 2-core machine (1,024-simulation MPR chunks): two
one-core processes finished 3.7 chunks/s together (0.54 s per chunk each) and compiled in 5.7 s side by side,
one process with two devices 4.2 chunks/s (0.24 s per chunk) after a 3.1 s compile. A chunk needs ``slice_size × cores`` simulations to keep every core busy.

The driver keeps one task per worker in flight (``IN_FLIGHT``: with two, Ray started a second worker process
per node for the queued task) and counts in a small actor the attempts that began a chunk; ``retries``
in the statistics is those attempts minus the chunks (a worker killed before its task's first line is
retried by Ray too, but not counted: it had lost no work).
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import numpy as np

from ._errors import ExecutorError

MAX_RETRIES = 3
# Tasks kept submitted per worker. With two, Ray started a second worker process on the node for the queued
# task, which compiled the chunk function again and took chunks in turn (100k MPR: 37.5 s, 2 processes);
# with one, 31.0 s, 1 process, the compute equal to the local executor's (22.9 s), ~46 ms idle per chunk.
IN_FLIGHT = 1
INSTALL = "the Ray executor needs Ray: pip install 'neurosbi[ray]'"


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


_WORKER_FUNCTIONS: dict = {}  # campaign token -> compiled chunk function, in each worker process
_WORKER_BANKS: dict = {}  # campaign token -> the bank's opened Zarr arrays, in each worker process


def _chunk_task(token, model, key_data, key_impl, i, theta, chunk_size, slice_size, screen, path, n, attempts):
    """One chunk on a worker: ``(i, arrays or None, seconds, pid)``; with ``path`` the rows go to the bank.
    The compiled function is kept per campaign ``token``: a model arrives as a new object in every task, and
    one with array fields cannot key ``simulate``'s own cache."""
    import ray

    ray.get(attempts.start.remote(i))  # first: an attempt killed from here on is counted
    import jax
    import jax.numpy as jnp

    from .simulate import _chunk_function, write_chunk

    key = jax.random.wrap_key_data(jnp.asarray(key_data, jnp.uint32), impl=key_impl)
    run = _WORKER_FUNCTIONS.get(token)
    if run is None:
        _WORKER_FUNCTIONS.clear()
        run = _WORKER_FUNCTIONS[token] = _chunk_function(model, chunk_size, theta is not None, slice_size, screen)
    start = time.perf_counter()
    arrays = run(key, jnp.asarray(i, jnp.uint32), None if theta is None else jnp.asarray(theta))
    seconds = time.perf_counter() - start
    if path is None:
        return i, arrays, seconds, os.getpid()
    arrays_of = _WORKER_BANKS.get(token)
    if arrays_of is None:
        import zarr

        try:
            root = zarr.open_group(str(path), mode="r+")
        except (OSError, FileNotFoundError) as err:
            raise ExecutorError(f"worker {socket.gethostname()} cannot open the bank at {path} ({err}); with Ray "
                                "on several machines the bank must be on a file system every worker sees") from None
        _WORKER_BANKS.clear()
        arrays_of = _WORKER_BANKS[token] = {name: root[name] for name in ("theta", "x", "screened")}
    lo, hi = i * chunk_size, min((i + 1) * chunk_size, n)
    write_chunk(arrays_of, lo, hi, *arrays)
    return i, None, seconds, os.getpid()


def run_chunks(model, key, todo, chunk_theta, *, chunk_size, slice_size, n, screen, path, address,
               cores_per_task=None):
    """Run the chunks ``todo`` as Ray tasks; yield ``(i, arrays or None, seconds)`` as each finishes, then
    ``(None, statistics, 0.0)``."""
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
        # one worker per node, holding all its cores, with one XLA host device per core: the local executor's
        # layout (module docstring). Nodes differ: a task takes the smallest node's cores.
        cores = int(cores_per_task or min(node["Resources"].get("CPU", 1) for node in ray.nodes()
                                          if node["Alive"] and node["Resources"].get("CPU", 0) >= 1))
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
        env = {"XLA_FLAGS": " ".join([*flags, f"--xla_force_host_platform_device_count={cores}"])}
        if os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # workers share the driver's persistent compile cache
            env["JAX_COMPILATION_CACHE_DIR"] = os.environ["JAX_COMPILATION_CACHE_DIR"]
        task = ray.remote(num_cpus=cores, max_retries=MAX_RETRIES)(_chunk_task).options(
            runtime_env={"env_vars": env})
        workers = max(int(ray.cluster_resources().get("CPU", 1)) // cores, 1)
        model_ref = ray.put(model)
        token = uuid.uuid4().hex
        pending = iter(todo)
        in_flight: set = set()
        pids: set[int] = set()
        done_sims = 0
        start = time.perf_counter()

        def submit():
            i = next(pending, None)
            if i is not None:
                ref = task.remote(token, model_ref, key_data, key_impl, i, chunk_theta(i), chunk_size, slice_size, screen,
                                  None if path is None else str(path), n, attempts)
                in_flight.add(ref)

        for _ in range(IN_FLIGHT * workers):
            submit()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            ref = ready[0]
            in_flight.discard(ref)
            try:
                i, arrays, seconds, pid = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                cause = err.as_instanceof_cause()
                raise (cause if isinstance(cause, ExecutorError) else err) from None
            pids.add(pid)
            done_sims += min((i + 1) * chunk_size, n) - i * chunk_size
            submit()
            yield i, arrays, seconds
        wall = time.perf_counter() - start
        retries = int(ray.get(attempts.total.remote())) - len(todo)
        yield None, {"num_workers": workers, "cores_per_worker": cores, "worker_processes": len(pids), "retries": retries, "wall_s": wall,
                     "sims_per_second": done_sims / wall if wall > 0 else float("nan")}, 0.0
    finally:
        if started:
            ray.shutdown()
