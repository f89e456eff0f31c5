"""Models of neural dynamics, each a ``Model``; a registry by name; user functions wrapped as models."""

from __future__ import annotations

from collections.abc import Callable

from .._errors import UnknownModelError
from ._base import EmergentProperty as EmergentProperty
from ._base import FunctionModel as FunctionModel
from ._base import Model as Model
from ._base import RawTraces as RawTraces
from ._base import from_function as from_function
from ._base import simulate_traces as simulate_traces
from .contamination import OUProcess as OUProcess
from .contamination import Ricker as Ricker
from .hh import HodgkinHuxley as HodgkinHuxley
from .lds import LinearSystem2D as LinearSystem2D
from .lowrank_rnn import RankTwoRNN as RankTwoRNN
from .montbrio import Montbrio as Montbrio
from .neurons import FAMILY as _FAMILY
from .neurons import LIF as LIF
from .neurons import QIF as QIF
from .neurons import AdEx as AdEx
from .neurons import FitzHughNagumo as FitzHughNagumo
from .neurons import Izhikevich as Izhikevich
from .neurons import SpikingModel as SpikingModel
from .neurons import WilsonCowan as WilsonCowan
from .pyloric import Pyloric as Pyloric
from .qif_network import QIFNetwork as QIFNetwork
from .sc_proanti import SCProAnti as SCProAnti
from .stg_hub import STGHub as STGHub
from .v1_ssn import V1Circuit as V1Circuit

_REGISTRY: dict[str, Callable[..., Model]] = {"montbrio": Montbrio, "hh": HodgkinHuxley, "pyloric": Pyloric,
    "qif-network": QIFNetwork, "ricker": Ricker, "oup": OUProcess, "lds-2d": LinearSystem2D,
    "rank2-rnn": RankTwoRNN, "v1-ssn": V1Circuit,
    "sc-proanti": SCProAnti, "stg-hub": STGHub,
    **_FAMILY,
}
_DESCRIPTIONS = {
    "montbrio": "Montbrió–Pazó–Roxin mean field of QIF neurons (Δ, η, J); 100 s, step current",
    "hh": "Hodgkin–Huxley neuron with M current (Gonçalves et al. 2020); 8 parameters, 120 ms step",
    "pyloric": "pyloric network AB/PD, LP, PY (Prinz et al. 2004); 31 conductances, 11 s, prep 845_082_0044",
    "qif-network": "10^4 all-to-all QIF neurons whose rate and mean potential MPR describes (Δ, η, J); 100 s",
    "lif": "leaky integrate-and-fire neuron; 1 s with a step on [100, 900) ms, spike-train features",
    "qif": "quadratic integrate-and-fire neuron (mV); same protocol and features as lif",
    "adex": "adaptive exponential integrate-and-fire (Brette & Gerstner 2005); same protocol",
    "izhikevich": "Izhikevich (2003) neuron, a b c d; same protocol",
    "fhn": "FitzHugh–Nagumo oscillator; same protocol",
    "wilson-cowan": "Wilson–Cowan E–I population with a Poisson E neuron; same protocol",
    "ricker": "Ricker population, Poisson counts, 100 i.i.d. series (robust-SBI benchmark, Huang et al. 2023)",
    "lds-2d": "2-D linear system tau dx/dt = A x (EPI, Bittner et al. 2021); statistics: top eigenvalue",
    "rank2-rnn": "rank-2 RNN W = U V^T + noise, N neurons (EPI); statistics: Re lambda1, lambda1 of (W+W^T)/2",
    "v1-ssn": "V1 stochastic SSN, E/P/S/V populations (EPI); parameters the input-noise stds; statistic s_E",
    "sc-proanti": "superior colliculus Pro/Anti task-switching circuit, 4 populations (EPI); statistics: p_pro, p_anti",
    "stg-hub": "STG five-neuron hub circuit (Gutierrez et al. 2013; EPI); parameters g_el, g_synA; hub frequency",
    "oup": "Ornstein–Uhlenbeck process, 100 i.i.d. series of 25 (robust-SBI benchmark, Huang et al. 2023)",
}


def register(name: str, factory: Callable[..., Model], description: str = "") -> None:
    """Make ``factory(**options)`` available as ``neurosbi.models.get(name, **options)``."""
    _REGISTRY[name] = factory
    _DESCRIPTIONS[name] = description


def names() -> list[str]:
    """Registered model names."""
    return sorted(_REGISTRY)


def with_emergent_property() -> list[str]:
    """Registered models that declare an emergent property (those ``fit_epi`` / ``neurosbi epi`` take)."""
    return [n for n in names() if hasattr(_REGISTRY[n], "emergent_property")]


def describe(name: str) -> str:
    return _DESCRIPTIONS.get(name, "")


def get(name: str, **options) -> Model:
    """The model registered as ``name``, built with ``options`` (e.g. ``observe="v"``)."""
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; available models: {', '.join(names())}"
        )
    try:
        return _REGISTRY[name](**options)
    except TypeError as err:
        raise TypeError(f"model {name!r} does not accept these options {sorted(options)}: {err}") from None
