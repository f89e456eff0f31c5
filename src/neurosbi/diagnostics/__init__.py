"""Diagnostics: functions of (estimator result, model, observation) returning numbers (and figures)."""

from .c2st import c2st as c2st
from .calibration import LEVELS as LEVELS
from .calibration import coverage_error as coverage_error
from .calibration import expected_coverage as expected_coverage
from .calibration import zscore_shrinkage as zscore_shrinkage
from .posterior_analysis import conditional_correlations as conditional_correlations
from .posterior_analysis import conditional_density as conditional_density
from .posterior_analysis import high_probability_path as high_probability_path
from .posterior_analysis import sensitivity as sensitivity
from .predictive import closeness as closeness
from .predictive import feature_predictive as feature_predictive
from .predictive import posterior_predictive as posterior_predictive
