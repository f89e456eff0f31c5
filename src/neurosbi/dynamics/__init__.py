"""Dynamical-systems tools: delay embedding, reconstruction of a hidden variable by delay regression, finite-difference derivatives, truncated polynomial
algebra, and spectral submanifolds (:mod:`neurosbi.dynamics.ssm`)."""

from . import ssm as ssm
from ._delay_regression import DelayReconstruction as DelayReconstruction
from ._delay_regression import DelayRegressor as DelayRegressor
from ._embedding import central_difference_weights as central_difference_weights
from ._embedding import delay_embed as delay_embed
from ._embedding import embedding_copies as embedding_copies
from ._embedding import time_derivative as time_derivative
from ._integrate import integrate as integrate
from ._neural_ode import NeuralODE as NeuralODE
from ._neural_ode import NeuralODEConfig as NeuralODEConfig
from ._neural_ode import field_error as field_error
from ._neural_ode import fit_neural_ode as fit_neural_ode
from ._neural_ode import segments as segments
from ._neural_ode_applications import mpr_dataset as mpr_dataset
from ._neural_ode_applications import run_neural_ode as run_neural_ode
from ._neural_ode_applications import run_qif_extrapolation as run_qif_extrapolation
from ._polynomials import PolynomialBasis as PolynomialBasis
from ._polynomials import monomial_exponents as monomial_exponents
