"""Every exception neurosbi raises on purpose.

Messages name the argument, the value received and what was expected, so a user can fix the call
without reading our code.
"""

from __future__ import annotations


class NeurosbiError(Exception):
    """Base class of all neurosbi errors."""


class ShapeError(NeurosbiError, ValueError):
    """An array has the wrong number of dimensions, columns or samples."""


class PriorSupportError(NeurosbiError, ValueError):
    """A parameter lies outside the support of the prior."""


class ObservationError(NeurosbiError, ValueError):
    """An observation is not usable (NaN, infinite, wrong length)."""


class UnknownModelError(NeurosbiError, KeyError):
    """No model of that name is registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class OutputError(NeurosbiError, OSError):
    """An output folder cannot be created or written."""


class BankError(NeurosbiError, ValueError):
    """A simulation bank on disk does not match the request (other model, key or size)."""


class TrainingError(NeurosbiError, RuntimeError):
    """Training could not run (too few valid simulations, loss not finite)."""


class ExecutorError(NeurosbiError, RuntimeError):
    """A distributed executor cannot run: Ray missing, its cluster unreachable, the bank not visible to a worker."""
