"""Spectral submanifolds (SSM): slow invariant manifolds of stable fixed points and the dynamics on them,
from trajectories (:func:`fit_ssm`) or from a vector field written in JAX (:func:`ssm_from_vector_field`);
normal forms and backbone curves of the reduced dynamics. Haller & Ponsioen (2016); Cenedese et al. (2022)."""

from ._applications import run_ssm_application as run_ssm_application
from ._equation import spectral_decomposition as spectral_decomposition
from ._equation import ssm_from_vector_field as ssm_from_vector_field
from ._fit import fit_manifold as fit_manifold
from ._fit import fit_reduced_field as fit_reduced_field
from ._fit import fit_reduced_map as fit_reduced_map
from ._fit import fit_ssm as fit_ssm
from ._invariance import ResonanceError as ResonanceError
from ._invariance import solve_invariance as solve_invariance
from ._manifold import SpectralSubmanifold as SpectralSubmanifold
from ._manifold import polynomial_basis as polynomial_basis
from ._normal_form import NormalForm as NormalForm
from ._normal_form import backbone as backbone
from ._normal_form import normal_form as normal_form
from ._taylor import taylor_coefficients as taylor_coefficients
