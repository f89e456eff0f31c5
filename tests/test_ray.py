"""The Ray executor: the same bank as a local run, a killed worker's chunk retried, a killed driver resumed,
clear errors without Ray or without a cluster. Marked ``ray``: CI runs them in their own step with
``neurosbi[ray]`` installed; without Ray they are skipped, except the missing-install error."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from neurosbi import ExecutorError, load_bank, simulate
from neurosbi._ray import busy_workers
from neurosbi.models import Montbrio

pytestmark = pytest.mark.ray
N, CHUNK = 2048, 256


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    return Montbrio(duration=4.0, t_on=1.0, t_off=2.0)


@pytest.fixture(scope="module")
def local_bank(model):
    return simulate(model, N, jax.random.key(7), chunk_size=CHUNK, progress=False)


def _same(bank, reference):
    np.testing.assert_array_equal(bank.theta, reference.theta)
    np.testing.assert_array_equal(bank.x, reference.x)
    np.testing.assert_array_equal(bank.valid, reference.valid)


def test_ray_bank_equals_local_bank(cluster, model, local_bank, tmp_path):
    bank = simulate(model, N, jax.random.key(7), chunk_size=CHUNK, progress=False, executor="ray",
                    path=tmp_path / "bank.zarr")
    _same(bank, local_bank)
    _same(load_bank(tmp_path / "bank.zarr")[0], local_bank)
    # one worker holding both cores, one XLA device per core (the local layout)
    stats = bank.stats
    assert (stats["num_workers"], stats["cores_per_worker"], stats["devices_per_worker"], stats["retries"]) == (1, 2, 2, 0)
    assert bank.stats["chunks_computed"] == N // CHUNK
    # without a path the chunks come back through the object store: same bytes
    _same(simulate(model, N, jax.random.key(7), chunk_size=CHUNK, progress=False, executor="ray"), local_bank)


def test_killed_worker_chunk_is_retried_and_bank_complete(cluster, model, local_bank, tmp_path):
    killed = []

    def kill_one():  # a worker 1 s into a chunk task: past its first line, inside the compile or the chunk
        seen = {}
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            now = time.monotonic()
            for pid in busy_workers():
                if now - seen.setdefault(pid, now) > 1.0:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    path = tmp_path / "bank.zarr"
    bank = simulate(model, N, jax.random.key(7), chunk_size=CHUNK, progress=False, executor="ray", path=path)
    killer.join()
    assert killed, "no chunk task was seen running"
    assert bank.stats["retries"] >= 1
    _same(bank, local_bank)  # complete, each row once, the same bytes
    _same(load_bank(path)[0], local_bank)


def test_killed_driver_resumes_from_the_bank(cluster, tmp_path):
    """The CLI driver killed mid-campaign; the same command again finishes the bank, equal to a local run."""
    out = tmp_path / "bank.zarr"
    n, chunk = 4096, 256
    cmd = [str(Path(sys.executable).parent / "neurosbi"), "simulate", "montbrio", "--num", str(n), "--out", str(out), "--seed", "3",
           "--chunk-size", str(chunk), "--executor", "ray", "--address", cluster, "--json"]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import zarr

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if (out / "done").exists() and zarr.open_group(str(out), mode="r")["done"][:].any():
            break
        time.sleep(0.2)
    driver.kill()
    driver.wait()
    partial = zarr.open_group(str(out), mode="r")["done"][:]
    assert 0 < partial.sum() < partial.size, "the driver should have died mid-campaign"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    bank, _ = load_bank(out)
    assert bank.stats["complete"]
    local = simulate(Montbrio(), n, jax.random.key(3), chunk_size=chunk, progress=False)
    _same(bank, local)


def test_unreachable_address_is_a_clear_error(model):
    pytest.importorskip("ray")
    with pytest.raises(ExecutorError, match="no Ray cluster answers at 127.0.0.1:9"):
        simulate(model, 16, jax.random.key(0), progress=False, executor="ray", address="127.0.0.1:9")


def test_missing_ray_names_the_extra(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExecutorError, match=r"neurosbi\[ray\]"):
        simulate(model, 16, jax.random.key(0), progress=False, executor="ray")
