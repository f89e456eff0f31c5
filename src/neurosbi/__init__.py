"""neurosbi: simulation-based inference for mechanistic models of neural dynamics (JAX).

``import neurosbi`` loads what a simulation campaign needs (models, priors, features, ``simulate``)
and nothing more: inference, diagnostics and the ``infer`` workflow (optax, scipy.stats, ArviZ,
matplotlib) are imported on first use through the module ``__getattr__`` (PEP 562). Every Ray
worker and every CLI call imports this package, and those libraries are most of its import time
(``python -X importtime -c "import neurosbi"``).

``simulate`` stays eager: it is both a submodule and the function exported here, and importing the
submodule after the package would otherwise leave the attribute bound to the module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import features as features
from . import models as models
from . import priors as priors
from ._errors import (
    BankError as BankError,
)
from ._errors import (
    ExecutorError as ExecutorError,
)
from ._errors import (
    NeurosbiError as NeurosbiError,
)
from ._errors import (
    ObservationError as ObservationError,
)
from ._errors import (
    OutputError as OutputError,
)
from ._errors import (
    PriorSupportError as PriorSupportError,
)
from ._errors import (
    ShapeError as ShapeError,
)
from ._errors import (
    TrainingError as TrainingError,
)
from ._errors import (
    UnknownModelError as UnknownModelError,
)
from ._runtime import use_all_cores as use_all_cores
from .simulate import Bank as Bank
from .simulate import load_bank as load_bank
from .simulate import simulate as simulate

if TYPE_CHECKING:
    from . import diagnostics as diagnostics
    from . import inference as inference
    from .inference import NPEConfig as NPEConfig
    from .inference import Posterior as Posterior
    from .inference import fit_npe as fit_npe
    from .inference import fit_npe_stream as fit_npe_stream
    from .inference import load_posterior as load_posterior
    from .workflow import infer as infer

__version__ = "0.1.0"

# name -> (submodule, attribute in it, or None for the submodule itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "diagnostics": (".diagnostics", None),
    "inference": (".inference", None),
    "NPEConfig": (".inference", "NPEConfig"),
    "Posterior": (".inference", "Posterior"),
    "fit_npe": (".inference", "fit_npe"),
    "fit_npe_stream": (".inference", "fit_npe_stream"),
    "load_posterior": (".inference", "load_posterior"),
    "infer": (".workflow", "infer"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'neurosbi' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
