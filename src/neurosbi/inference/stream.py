"""Minibatches streamed from simulations that need not fit in memory.

A *source* serves a simulation bank chunk by chunk (``BankSource``: the Zarr bank ``simulate`` writes,
read one chunk at a time; ``ArraySource``: arrays already in memory, cut the same way). Training
(``npe.fit_npe_stream``) sees the bank only through three functions here:

- ``split_chunks``: the validation split, by whole chunks (a chunk is one compiled simulator call, so
  splitting by chunk keeps the split's rows independent of how chunks were scheduled);
- ``streaming_statistics``: the z-score statistics of the training chunks in one pass, merged chunk by
  chunk in float64 (Chan, Golub & LeVeque's pairwise update);
- ``blocks``: an epoch as fixed-shape blocks of minibatches: the chunks in windows of consecutive chunks
  (read in one call), the windows in a shuffled order with boundaries shifted per epoch, rows shuffled within
  a window, read and prepared by a background thread a few blocks ahead of the compiled training step.

Rows of a bank are independent draws from the prior (or one round's proposal), so shuffling the windows
and the rows within each gives minibatches with the same distribution as a shuffle of the whole bank. Blocks have a fixed shape (so one
compiled step serves every block): the epoch's last block is padded with inactive steps, and the rows
left after the last full minibatch are dropped, as the in-memory epoch drops its remainder.

Why a thread and not ``grain`` / ``tf.data`` / a torch ``DataLoader``: the work per chunk is a Zarr read
and a few NumPy operations that release the GIL; one thread with a bounded queue keeps the step fed
(measured in ``benchmarks/stream_training.py``) without a dependency that brings its own runtime.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import BankError


class ArraySource:
    """Simulations held in memory, served chunk by chunk like a bank (``chunk_size`` rows per chunk)."""

    def __init__(self, theta, x, chunk_size: int):
        self.theta, self.x = np.asarray(theta, np.float32), np.asarray(x, np.float32)
        if self.theta.ndim != 2 or self.x.ndim != 2 or len(self.theta) != len(self.x):
            raise ValueError(f"theta and x must be [n, dim] and [n, features] with equal n, got {self.theta.shape} "
                             f"and {self.x.shape}")
        self.chunk_size = int(chunk_size)
        self.chunks = list(range(-(-len(self.theta) // self.chunk_size)))
        self.dim, self.num_features = self.theta.shape[1], self.x.shape[1]

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo = i * self.chunk_size
        return self.theta[lo: lo + self.chunk_size], self.x[lo: lo + self.chunk_size]

    def read_many(self, chunks: Sequence) -> tuple[np.ndarray, np.ndarray]:
        return _concatenate([self.read(c) for c in chunks])


class BankSource:
    """The chunks of one or more Zarr banks written by ``simulate(..., path=)``, read one at a time.

    Only chunks marked done are served (an interrupted bank trains on what it holds). Several banks (the
    rounds of sequential NPE) must share parameters and features; their chunks are numbered one after the
    other."""

    def __init__(self, paths):
        import zarr

        paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
        if not paths:
            raise BankError("no bank given to stream from")
        self.meta, self._arrays, self.chunks = [], [], []
        for b, path in enumerate(paths):
            try:
                root = zarr.open_group(str(path), mode="r")
            except (FileNotFoundError, OSError, ValueError):
                raise BankError(f"no simulation bank at {path}; run `neurosbi simulate MODEL --out {path}` "
                                "first") from None
            if "done" not in root:
                raise BankError(f"{path} is not a neurosbi simulation bank (no 'done' array)")
            meta = dict(root.attrs)
            if self.meta and (meta["param_names"], meta["feature_names"]) != (self.meta[0]["param_names"],
                                                                               self.meta[0]["feature_names"]):
                raise BankError(f"the bank at {path} has parameters {meta['param_names']} and features "
                                f"{meta['feature_names']}, the first bank {self.meta[0]['param_names']} and "
                                f"{self.meta[0]['feature_names']}: stream banks of one model")
            self.meta.append(meta)
            self._arrays.append((root["theta"], root["x"], int(meta["chunk_size"])))
            self.chunks += [(b, int(i)) for i in np.flatnonzero(root["done"][:])]
        self.dim, self.num_features = len(self.meta[0]["param_names"]), len(self.meta[0]["feature_names"])
        self.param_names = tuple(self.meta[0]["param_names"])
        self.chunk_size = max(c for _, _, c in self._arrays)

    def read(self, chunk) -> tuple[np.ndarray, np.ndarray]:
        return self.read_many([chunk])

    def read_many(self, chunks: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``chunks``, in order; consecutive chunks of one bank are read in one call (Zarr then
        fetches their files concurrently: measured 0.9 ms per chunk read eight at a time, 2.1 ms one by one)."""
        parts, run = [], []
        for chunk in list(chunks) + [None]:
            if run and (chunk is None or chunk[0] != run[-1][0] or chunk[1] != run[-1][1] + 1):
                theta, x, size = self._arrays[run[0][0]]
                lo, hi = run[0][1] * size, (run[-1][1] + 1) * size
                parts.append((theta[lo:hi], x[lo:hi]))
                run = []
            if chunk is not None:
                run.append(chunk)
        return _concatenate(parts)


def _concatenate(parts) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def split_chunks(source, fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    """``(train, validation)`` chunks: ``fraction`` of the chunks (at least one) held out, chosen by ``rng``."""
    chunks = list(source.chunks)
    if len(chunks) < 2:
        raise BankError(f"the bank holds {len(chunks)} finished chunk(s); streaming holds whole chunks out for "
                        "validation and needs at least 2: simulate with a smaller --chunk-size, or train in memory")
    order = rng.permutation(len(chunks))
    n_val = min(max(int(round(fraction * len(chunks))), 1), len(chunks) - 1)
    return [chunks[i] for i in sorted(order[n_val:])], [chunks[i] for i in sorted(order[:n_val])]


@dataclass
class Moments:
    """Running count, mean and sum of squared deviations of rows (float64), mergeable."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    def add(self, rows: np.ndarray) -> Moments:
        if len(rows) == 0:
            return self
        rows = np.asarray(rows, np.float64)
        n_b, mean_b = len(rows), rows.mean(0)
        m2_b = ((rows - mean_b) ** 2).sum(0)
        n = self.n + n_b
        delta = mean_b - self.mean
        return Moments(n, self.mean + delta * n_b / n, self.m2 + m2_b + delta**2 * self.n * n_b / n)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


def streaming_statistics(source, chunks: Sequence, prepare: Callable, window: int = 8
                         ) -> tuple[Moments, Moments, int, int]:
    """One pass over ``chunks`` (``window`` at a time): the moments of the prepared θ and x rows, and the counts
    of usable and dropped rows. ``prepare(theta, x) -> (theta, x, keep)`` is the row preparation training
    applies."""
    moments_t = moments_x = None
    kept = dropped = 0
    chunks = list(chunks)
    for start in range(0, len(chunks), window):
        theta, x, keep = prepare(*source.read_many(chunks[start: start + window]))
        if moments_t is None:
            moments_t = Moments(0, np.zeros(theta.shape[1]), np.zeros(theta.shape[1]))
            moments_x = Moments(0, np.zeros(x.shape[1]), np.zeros(x.shape[1]))
        moments_t, moments_x = moments_t.add(theta[keep]), moments_x.add(x[keep])
        kept += int(keep.sum())
        dropped += int((~keep).sum())
    return moments_t, moments_x, kept, dropped


@dataclass(frozen=True)
class Block:
    """``steps`` minibatches of ``batch`` rows (arrays ``[steps, batch, ...]``); ``active[s]`` False for padding."""

    arrays: tuple[np.ndarray, ...]
    active: np.ndarray
    rows: int


def _blocks(source, chunks: Sequence, prepare: Callable, *, batch: int, steps: int, window: int,
            rng: np.random.Generator | None) -> Iterator[Block]:
    """The epoch over ``chunks`` as blocks (see the module docstring); ``rng`` None: no shuffling.

    A window is ``window`` consecutive chunks of the list (read in one call), the windows' boundaries shifted
    by a random offset and their order shuffled each epoch."""
    chunks = list(chunks)
    if rng is None:
        windows = [chunks[i: i + window] for i in range(0, len(chunks), window)]
    else:
        offset = int(rng.integers(window))
        edges = [0] + list(range(offset or window, len(chunks), window)) + [len(chunks)]
        windows = [chunks[a:b] for a, b in zip(edges[:-1], edges[1:]) if b > a]
        windows = [windows[i] for i in rng.permutation(len(windows))]
    block_rows = batch * steps
    pending: list[tuple[np.ndarray, ...]] = []
    held = 0
    for group in windows:
        prepared = prepare(*source.read_many(group))
        rows = tuple(a[prepared[-1]] for a in prepared[:-1])
        if rng is not None:
            perm = rng.permutation(len(rows[0]))
            rows = tuple(a[perm] for a in rows)
        pending.append(rows)
        held += len(rows[0])
        while held >= block_rows:
            joined = tuple(np.concatenate(a) for a in zip(*pending))
            yield Block(tuple(a[:block_rows].reshape(steps, batch, *a.shape[1:]) for a in joined),
                        np.ones(steps, bool), block_rows)
            pending = [tuple(a[block_rows:] for a in joined)]
            held -= block_rows
    full = held // batch
    if full:
        joined = tuple(np.concatenate(a)[: full * batch] for a in zip(*pending))
        padded = tuple(np.concatenate([a, np.zeros((block_rows - len(a), *a.shape[1:]), a.dtype)])
                       .reshape(steps, batch, *a.shape[1:]) for a in joined)
        yield Block(padded, np.arange(steps) < full, full * batch)


def blocks(source, chunks: Sequence, prepare: Callable, *, batch: int, steps: int, window: int = 8,
           rng: np.random.Generator | None = None, prefetch: int = 4) -> Iterator[Block]:
    """``_blocks`` read ahead by a background thread (at most ``prefetch`` blocks waiting). The blocks and
    their order are the same as without the thread: only ``rng`` decides them."""
    if prefetch <= 0:
        yield from _blocks(source, chunks, prepare, batch=batch, steps=steps, window=window, rng=rng)
        return
    waiting: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        """Queue ``item`` unless the consumer has gone (then False)."""
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for block in _blocks(source, chunks, prepare, batch=batch, steps=steps, window=window, rng=rng):
                if not offer(block):
                    return
            offer(done)
        except BaseException as err:  # handed to the consumer, raised there
            offer(err)

    thread = threading.Thread(target=produce, daemon=True, name="neurosbi-prefetch")
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
