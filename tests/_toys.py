"""A toy model that screens, shared by the tests and their two-device subprocess."""

from typing import ClassVar

import equinox as eqx
import jax

from neurosbi import priors
from neurosbi.models import Model
from neurosbi.models._base import simulation_keys


class ScreenedToy(Model):
    """x = θ + 0.1 ε; the pilot draws ε and passes the simulations with θ₀ > 0."""

    name: ClassVar[str] = "screened_toy"
    per_simulation_keys: ClassVar[bool] = True
    screen: bool = eqx.field(static=True, default=True)

    @property
    def screens(self):
        return self.screen

    @property
    def param_names(self):
        return ("a", "b")

    @property
    def prior(self):
        return priors.box_uniform([-1.0, -1.0], [1.0, 1.0])

    @property
    def feature_names(self):
        return ("x_a", "x_b")

    def config(self):
        return {"screen": self.screen}

    def pilot(self, keys, theta):
        noise = jax.vmap(lambda k: jax.random.normal(k, (2,)))(keys)
        return {"noise": noise}, theta[:, 0] > 0

    def resume(self, keys, theta, state):
        return theta + 0.1 * state["noise"]

    def simulate_features(self, key, theta):
        keys = simulation_keys(key, theta.shape[0])
        return self.resume(keys, theta, self.pilot(keys, theta)[0])
