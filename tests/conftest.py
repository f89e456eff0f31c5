"""Shared fixtures: explicit keys, small models, a cheap toy model; compiled functions reused."""

import jax
import jax.numpy as jnp
import pytest

from neurosbi import priors
from neurosbi.models import Montbrio, from_function


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="session")
def short_montbrio():
    """MPR with the published dynamics on a 4 s protocol (stimulus on [1, 2) s): fast to compile and run."""
    return Montbrio(duration=4.0, t_on=1.0, t_off=2.0)


def _linear_gaussian(key, theta):
    return theta + 0.5 * jax.random.normal(key, theta.shape)


@pytest.fixture(scope="session")
def gaussian_model():
    """theta ~ N(0, I_2), x = theta + N(0, 0.5^2 I): posterior N(0.8 x, 0.2 I)."""
    return from_function(_linear_gaussian, priors.gaussian(jnp.zeros(2), jnp.ones(2)), name="linear_gaussian",
                         truth=[0.5, -1.0])


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. Once the issue-7 tests were added, the whole
    fast suite in one process failed in XLA's CPU JIT (a segmentation fault, then "Failed to materialize
    symbols") at a test that passes alone. Suspected cause: every executable keeps its own memory
    mappings and the kernel allows 65,530 per process; with this fixture the CI's pytest process held
    2,222-5,452 mappings and the suite passed. The count without it was not measured."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()
