"""Summary statistics: pure, batched, jit-able functions of traces."""

from ._hh import HH_FEATURES as HH_FEATURES
from ._hh import HHSummary as HHSummary
from ._hh import count_spikes as count_spikes
from ._hh import spike_mask as spike_mask
from ._moments import exact_median as exact_median
from ._moments import moments as moments
from ._peaks import find_peaks as find_peaks
from ._peaks import local_maxima as local_maxima
from ._pyloric import PYLORIC_FEATURES as PYLORIC_FEATURES
from ._pyloric import PyloricSummary as PyloricSummary
from ._spikes import SPIKE_FEATURES as SPIKE_FEATURES
from ._spikes import SpikeSummary as SpikeSummary
from ._windowed import PER_VARIABLE as PER_VARIABLE
from ._windowed import WindowedSummary as WindowedSummary
