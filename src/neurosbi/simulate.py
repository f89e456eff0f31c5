"""The one place that runs simulators at scale.

``simulate(model, n, key)`` draws parameters from the prior and runs the model's
``simulate_features`` in fixed-size chunks, each one compiled call. Chunk ``i`` draws everything
from ``jax.random.fold_in(key, i)``, so the bank is the same bytes whatever order chunks ran in and
however often the run was interrupted. With ``path`` the bank lives in a Zarr store: each chunk is
written as it finishes and marked done last, so a killed run resumes from the store without
recomputing or losing a chunk. Simulations with NaN or infinite features are kept in the bank,
flagged in the ``valid`` mask, counted, and reported; estimators skip them.

Screening: for a model that ``screens`` (pyloric), every simulation of a chunk first runs the
model's cheap ``pilot``; only those that pass are finished (``resume``), gathered into one batch
padded to a power of two. The rest are stored with NaN features and marked in the bank's
``screened`` array (``stats["num_screened"]``).

Devices: a model with ``per_simulation_keys`` (each simulation draws from its own key) runs each
chunk as fixed-size slices spread over the local devices with ``jax.shard_map``; every slice is the
same compiled body, so the bank is the same bytes on one device or several. On a CPU, XLA exposes
one device unless told otherwise: ``neurosbi.use_all_cores()`` (called by the CLI) makes one host
device per core, which on the 2-core project machine runs a
chunk 1.5× (MPR) to 2.3× (HH dynamics) faster than XLA's own threading of one device
(``benchmarks/README.md``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ._errors import BankError, OutputError
from .models import Model

DEFAULT_CHUNK = 1024  # measured: 1,024 and 2,048 give the same MPR throughput; 256 is 30 % slower
# 2: one key per simulation (neurosbi >= this change); a bank of another format is not resumed
_BANK_FORMAT = 2
DEFAULT_SLICE = 512  # simulations per slice of a chunk: two slices per default chunk, one per core


def prepare_output(out) -> Path:
    """Create ``out`` and check that it is writable, before any long work starts."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".neurosbi-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"output folder {out} is not writable ({err.strerror}); pass --out to a folder you can write") from None
    return out


@dataclass(frozen=True)
class Bank:
    """Simulations: parameters, features and a validity mask (all NumPy, in memory)."""

    theta: np.ndarray
    x: np.ndarray
    valid: np.ndarray
    param_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    stats: dict[str, Any] = field(default_factory=dict)
    # simulations a screening model stopped after its pilot (invalid, NaN features); None: no screen
    screened: np.ndarray | None = None

    @property
    def num_screened(self) -> int:
        return 0 if self.screened is None else int(self.screened.sum())

    @property
    def num_invalid(self) -> int:
        return int((~self.valid).sum())

    def __len__(self) -> int:
        return int(self.theta.shape[0])


def _key_data(key) -> list[int]:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).reshape(-1).tolist()


def _layout(model: Model, chunk: int, slice_size: int) -> tuple[int, list]:
    """``(slices, devices)``: a chunk runs as ``slices`` calls of ``chunk // slices`` simulations
    (one compiled body, so every slice is computed by the same code), spread over ``devices``."""
    if not model.per_simulation_keys or chunk % slice_size or chunk == slice_size:
        return 1, jax.local_devices()[:1]
    slices = chunk // slice_size
    devices = jax.local_devices()[:slices]
    while slices % len(devices):
        devices = devices[:-1]
    return slices, devices


def _over_slices(fn, devices):
    """``fn(keys [b], theta [b, dim], *rest)`` applied to arguments with two leading axes
    ``[slices, b]`` (every leaf), one slice after another, the slices spread over ``devices``."""

    def run_slices(*args):
        return jax.lax.map(lambda a: fn(*a), args)

    if len(devices) == 1:
        return run_slices
    from jax.sharding import Mesh, PartitionSpec

    spec = PartitionSpec("devices")
    return jax.shard_map(run_slices, mesh=Mesh(np.asarray(devices), ("devices",)), in_specs=spec,
                         out_specs=spec, check_vma=False)


def _merge(tree, n):
    return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), tree)


def _split(tree, slices):
    return jax.tree.map(lambda a: a.reshape(slices, a.shape[0] // slices, *a.shape[1:]), tree)


_COMPILED: dict = {}  # (model, chunk, theta_given, slice_size, screen) -> chunk function, for hashable models
_COMPILED_MAX = 16


def _cached_chunk_function(*args):
    """``_chunk_function(*args)``, kept across calls for a hashable model: the rounds of a sequential
    run and repeated checks on one model compile each shape once (a pyloric chunk takes minutes)."""
    try:
        hit = _COMPILED.get(args)
    except TypeError:  # a model with array fields: compiled per call
        return _chunk_function(*args)
    if hit is None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        hit = _COMPILED[args] = _chunk_function(*args)
    return hit


def _chunk_function(model: Model, chunk: int, theta_given: bool, slice_size: int, screen: bool):
    """A compiled ``(key, i, theta) -> (theta, x, screened)`` for one chunk of ``chunk`` simulations
    (``screened``: ``[chunk]`` bool, or None when the model does not screen or ``screen`` is False)."""
    slices, devices = _layout(model, chunk, slice_size)

    def draw(key, i, theta):
        k_prior, k_sim = jax.random.split(jax.random.fold_in(key, i))
        if not theta_given:
            theta = model.prior.sample(k_prior, (chunk,)).astype(jnp.float32)
        return theta, k_sim

    if screen and model.screens:
        return _screened_chunk_function(model, chunk, draw, slices, devices)
    run_slices = _over_slices(model.simulate_features, devices)

    @eqx.filter_jit
    def run(key, i, theta):
        theta, k_sim = draw(key, i, theta)
        if slices == 1:
            return theta, model.simulate_features(k_sim, theta)
        keys = jax.random.split(k_sim, chunk)
        return theta, _merge(run_slices(*_split((keys, theta), slices)), chunk)

    def chunk_fn(key, i, theta):
        theta, x = run(key, i, theta)
        return np.asarray(theta), np.asarray(x), None

    return chunk_fn


def _screened_chunk_function(model: Model, chunk: int, draw, slices: int, devices):
    """Every simulation of the chunk runs ``model.pilot``; those that pass are gathered into one
    batch (padded to a power of two, so few shapes compile) and finished by ``model.resume``."""
    if not model.per_simulation_keys:
        raise ValueError(f"{model.name} screens but has no per-simulation keys; screening needs them")
    pilot_slices = _over_slices(model.pilot, devices)
    resume_slices = _over_slices(model.resume, devices)

    @eqx.filter_jit
    def pilot(key, i, theta):
        theta, k_sim = draw(key, i, theta)
        keys = jax.random.split(k_sim, chunk)
        if slices == 1:
            state, passed = model.pilot(keys, theta)
        else:
            state, passed = _merge(pilot_slices(*_split((keys, theta), slices)), chunk)
        return theta, keys, state, passed

    @eqx.filter_jit
    def resume(keys, theta, state, idx):
        args = jax.tree.map(lambda a: a[idx], (keys, theta, state))
        n = idx.shape[0]
        if len(devices) == 1 or n % len(devices):
            return model.resume(*args)
        return _merge(resume_slices(*_split(args, len(devices))), n)

    def chunk_fn(key, i, theta):
        theta, keys, state, passed = pilot(key, i, theta)
        passed = np.asarray(passed)
        x = np.full((chunk, len(model.feature_names)), np.nan, np.float32)
        idx = np.flatnonzero(passed)
        if idx.size:
            size = min(max(2 ** int(np.ceil(np.log2(idx.size))), 2 * len(devices)), chunk)
            padded = np.concatenate([idx, np.full(size - idx.size, idx[0])])
            x[idx] = np.asarray(resume(keys, theta, state, jnp.asarray(padded, jnp.int32)))[: idx.size]
        return np.asarray(theta), x, ~passed

    return chunk_fn


def simulate(
    model: Model,
    n: int,
    key,
    *,
    theta=None,
    path: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    slice_size: int = DEFAULT_SLICE,
    progress: bool = True,
    max_chunks: int | None = None,
    screen: bool = True,
    executor: str = "local",
    address: str | None = None,
    load: bool = True,
) -> Bank:
    """Run ``n`` simulations of ``model``; parameters from its prior unless ``theta`` is given.

    Args:
        model: a ``neurosbi.models.Model``.
        n: number of simulations.
        key: a JAX PRNG key; the bank is a deterministic function of it.
        theta: optional ``[n, dim]`` parameters to simulate instead of prior draws.
        path: a Zarr store to write chunks to and resume from (``None``: memory only).
        chunk_size: simulations per compiled call (the last chunk is padded, then trimmed).
        slice_size: for models with per-simulation keys, a chunk runs as slices of this many
            simulations spread over the local devices; the bank is the same bytes for any number
            of devices (a chunk that is not a multiple of it runs whole on one device).
        progress: show a progress bar.
        max_chunks: stop after computing this many new chunks (for tests of resumption).
        screen: for a model that ``screens``, run its pilot first and finish only what passes
            (False: every simulation in full, as checks of a posterior need).
        executor: ``"local"`` (this process, chunks spread over its local devices) or ``"ray"`` (chunks
            on the Ray cluster at ``address``, one worker per node with a device per core;
            ``neurosbi[ray]``). The bank is the same bytes either way.
        address: the Ray cluster to join (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``); ``None``
            starts a local one with every core (or uses the one this process already joined). With
            ``path``, every worker must see ``path`` (a shared file system): workers write their
            chunks there and the driver marks them done.
        load: read the finished bank into memory (with ``path``; False: the returned bank's ``theta``, ``x``
            and ``screened`` are the Zarr arrays on disk, read when indexed, with every row, and ``valid``
            is False where a row is invalid or its chunk unfinished; the statistics come from one pass
            over the chunks. For campaigns larger than memory; train from them with ``fit_npe_stream``).

    Returns:
        A ``Bank``; ``bank.stats`` holds ``sims_per_second`` (after the first chunk, which compiles: locally
        the chunks' compute time, with Ray the driver's wall time from the first chunk back to the last),
        ``compile_s``, ``num_invalid``, ``chunks_resumed`` (with Ray also ``num_workers``, ``retries`` and
        ``wall_s``, the whole campaign's wall time including the workers' start).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 simulation, got {n}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if address is not None and executor != "ray":
        raise ValueError(f"address={address!r} names a Ray cluster; pass executor='ray' with it")
    if not load and path is None:
        raise ValueError("load=False leaves the bank on disk: give path= too")
    chunk_size = min(chunk_size, n)
    dim = len(model.param_names)
    n_features = len(model.feature_names)
    if theta is not None:
        theta = model.check_theta(theta).astype(np.float32)
        if theta.shape[0] != n:
            raise ValueError(f"theta has {theta.shape[0]} rows, expected n = {n}")
    n_chunks = -(-n // chunk_size)

    store = (_open_store(path, model, n, key, chunk_size, slice_size, dim, n_features, theta is not None,
                         screen and model.screens) if path else None)
    if store is None:
        theta_out = np.zeros((n, dim), np.float32)
        x_out = np.zeros((n, n_features), np.float32)
        screened_out = np.zeros(n, bool)
        done = np.zeros(n_chunks, bool)
    else:
        theta_out, x_out, screened_out, done = store["theta"], store["x"], store["screened"], store["done"][:]
    resumed = int(done.sum())

    if slice_size < 1:
        raise ValueError(f"slice_size must be >= 1, got {slice_size}")
    todo = [i for i in range(n_chunks) if not done[i]][:max_chunks]

    def chunk_theta(i):
        """The given parameters of chunk ``i``, padded to a whole chunk (None: drawn from the prior)."""
        if theta is None:
            return None
        lo, hi = i * chunk_size, min((i + 1) * chunk_size, n)
        th = np.zeros((chunk_size, dim), np.float32)
        th[: hi - lo] = theta[lo:hi]
        return th

    if executor == "ray":
        from ._ray import run_chunks

        chunks = run_chunks(model, key, todo, chunk_theta, chunk_size=chunk_size, slice_size=slice_size, n=n,
                            screen=screen, path=path if store is not None else None, address=address)
    else:
        chunks = _local_chunks(_cached_chunk_function(model, chunk_size, theta is not None, slice_size, screen),
                               key, todo, chunk_theta)
    computed = 0
    compile_s = 0.0
    run_s = 0.0
    executor_stats: dict = {}
    marks = _DoneMarks(store)
    with _progress(progress) as bar, marks:
        task = bar.add_task(f"simulating {model.name}", total=n, completed=resumed * chunk_size)
        for i, arrays, elapsed in chunks:
            if i is None:  # the executor's closing statistics
                executor_stats = arrays
                continue
            lo, hi = i * chunk_size, min((i + 1) * chunk_size, n)
            if computed == 0:
                compile_s = elapsed
            else:
                run_s += elapsed
            if arrays is not None:  # None: a worker wrote them to the store itself
                write_chunk({"theta": theta_out, "x": x_out, "screened": screened_out}, lo, hi, *arrays)
            marks.add(i)  # after the data: a chunk is done only once its data is
            done[i] = True
            computed += 1
            bar.update(task, advance=hi - lo)

    if store is not None and not load:
        theta_np, x_np, screened_np = store["theta"], store["x"], store["screened"]
        valid = np.zeros(n, bool)
        screened_count = 0
        for i in np.flatnonzero(store["done"][:]):
            lo, hi = i * chunk_size, min((i + 1) * chunk_size, n)
            valid[lo:hi] = np.all(np.isfinite(x_np[lo:hi]), axis=1)
            screened_count += int(screened_np[lo:hi].sum())
        done_mask = np.repeat(store["done"][:], chunk_size)[:n]
    elif store is not None:
        theta_np, x_np, screened_np = store["theta"][:], store["x"][:], store["screened"][:]
        done_mask = np.repeat(store["done"][:], chunk_size)[:n]
    else:
        theta_np, x_np, screened_np = theta_out, x_out, screened_out
        done_mask = np.repeat(done, chunk_size)[:n]
    if load or store is None:
        if not done_mask.all():  # interrupted on purpose (max_chunks): return what exists
            theta_np, x_np, screened_np = theta_np[done_mask], x_np[done_mask], screened_np[done_mask]
        valid = np.all(np.isfinite(x_np), axis=1)
        screened_count = int(screened_np.sum())
    timed = (computed - 1) * chunk_size if computed > 1 else 0
    stats = {
        "executor": executor,
        "num_simulations": int(done_mask.sum()),
        "num_invalid": int(done_mask.sum() - valid.sum()),  # valid is False in unfinished chunks
        "num_screened": screened_count,
        "chunks_computed": computed,
        "chunks_resumed": resumed,
        # devices of this process per chunk (Ray: each worker has its own, one by default)
        **({"num_devices": len(_layout(model, chunk_size, slice_size)[1])} if executor == "local" else {}),
        "complete": bool(done_mask.all()),
        "compile_s": compile_s,
        "run_s": run_s,
        "sims_per_second": timed / run_s if run_s > 0 else float("nan"),
        **executor_stats,
    }
    if store is not None:
        store.attrs["num_invalid"] = stats["num_invalid"]
    return Bank(theta_np, x_np, valid, tuple(model.param_names), tuple(model.feature_names), stats,
                screened_np)


EXECUTORS = ("local", "ray")


class _DoneMarks:
    """Marks finished chunks done in the store, at most once a second in one write (and on leaving): one write
    costs ~2.3 ms whatever the number of chunks, which one by one would cap a driver at ~400 chunks/s
    (measured; a cluster of a few hundred workers finishes chunks faster). A driver killed between two writes
    recomputes at most the last second's chunks when rerun; their rows were written first, so nothing is
    lost or half-written."""

    def __init__(self, store, every: float = 1.0):
        self.store, self.every, self.pending, self.last = store, every, [], time.monotonic()

    def add(self, i: int) -> None:
        if self.store is None:
            return
        self.pending.append(i)
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store["done"].oindex[np.asarray(self.pending)] = True
            self.pending = []
        self.last = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.flush()


def _local_chunks(run, key, todo, chunk_theta):
    """Chunks computed in this process: ``(i, (theta, x, screened), seconds)`` one after another."""
    for i in todo:
        th_in = chunk_theta(i)
        t0 = time.perf_counter()
        arrays = run(key, jnp.asarray(i, jnp.uint32), None if th_in is None else jnp.asarray(th_in))
        yield i, arrays, time.perf_counter() - t0


def write_chunk(arrays, lo: int, hi: int, theta, x, screened) -> None:
    """Rows ``[lo, hi)`` of a bank's ``theta`` / ``x`` / ``screened`` arrays (NumPy or Zarr) from one chunk's
    outputs (padded to the chunk size; ``screened`` None: nothing screened)."""
    arrays["theta"][lo:hi] = theta[: hi - lo]
    arrays["x"][lo:hi] = x[: hi - lo]
    if screened is not None:
        arrays["screened"][lo:hi] = screened[: hi - lo]


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def bank_identity(model: Model, n: int, key) -> dict:
    """The metadata that makes a bank these simulations: model, its configuration, their number, the key."""
    return {"model": model.name, "model_config": json.loads(json.dumps(model.config(), default=str)),
            "num_simulations": n, "key": _key_data(key)}


def _open_store(path, model, n, key, chunk_size, slice_size, dim, n_features, theta_given, screened):
    import zarr

    path = Path(path)
    meta = {
        **bank_identity(model, n, key),
        "chunk_size": chunk_size,
        "slice_size": slice_size,
        "bank_format": _BANK_FORMAT,
        "theta_given": theta_given,
        "screened": screened,
        "param_names": list(model.param_names),
        "feature_names": list(model.feature_names),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        root = zarr.open_group(str(path), mode="a")
    except OSError as err:
        raise OutputError(f"cannot create the simulation bank at {path}: {err}") from None
    if "done" in root:
        # banks written before the "screened" key: the model screened them whenever it could
        old = {"screened": model.screens, **dict(root.attrs)}
        for k, v in meta.items():
            if old.get(k) != v:
                raise BankError(
                    f"the bank at {path} was made with {k} = {old.get(k)!r}, this run asks for {v!r}; "
                    "use another --out folder or the same settings to resume"
                )
        if "screened" not in root:  # written before screening existed: nothing in it was screened
            root.create_array("screened", shape=(n,), chunks=(chunk_size,), dtype="bool", fill_value=False)
        return root
    n_chunks = -(-n // chunk_size)
    root.attrs.update(meta)
    root.create_array("theta", shape=(n, dim), chunks=(chunk_size, dim), dtype="float32")
    root.create_array("x", shape=(n, n_features), chunks=(chunk_size, n_features), dtype="float32")
    root.create_array("screened", shape=(n,), chunks=(chunk_size,), dtype="bool", fill_value=False)
    root.create_array("done", shape=(n_chunks,), chunks=(n_chunks,), dtype="bool", fill_value=False)
    return root


def load_bank(path: str | os.PathLike) -> tuple[Bank, dict[str, Any]]:
    """Read a bank written by ``simulate(..., path=...)``: the bank and its metadata."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise BankError(f"no simulation bank at {path}; run `neurosbi simulate MODEL --out {path}` first")
    root = zarr.open_group(str(path), mode="r")
    if "done" not in root:
        raise BankError(f"{path} is not a neurosbi simulation bank (no 'done' array)")
    meta = dict(root.attrs)
    done = np.repeat(root["done"][:], meta["chunk_size"])[: meta["num_simulations"]]
    theta, x = root["theta"][:][done], root["x"][:][done]
    screened = root["screened"][:][done] if "screened" in root else np.zeros(len(x), bool)
    valid = np.all(np.isfinite(x), axis=1)
    stats = {"num_simulations": int(done.sum()), "num_invalid": int((~valid).sum()),
             "num_screened": int(screened.sum()), "complete": bool(done.all())}
    bank = Bank(theta, x, valid, tuple(meta["param_names"]), tuple(meta["feature_names"]), stats, screened)
    return bank, meta
