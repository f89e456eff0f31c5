"""neurosbi: simulation-based inference for mechanistic models of neural dynamics (JAX)."""

from . import diagnostics as diagnostics
from . import features as features
from . import inference as inference
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
from .inference import NPEConfig as NPEConfig
from .inference import Posterior as Posterior
from .inference import fit_npe as fit_npe
from .inference import fit_npe_stream as fit_npe_stream
from .inference import load_posterior as load_posterior
from .simulate import Bank as Bank
from .simulate import load_bank as load_bank
from .simulate import simulate as simulate
from .workflow import infer as infer

__version__ = "0.1.0"
