"""Estimators: each returns a distribution (sample / log_prob) or a point estimate."""

from .embedding import DeepSet as DeepSet
from .embedding import FeatureMLP as FeatureMLP
from .embedding import TraceCNN as TraceCNN
from .embedding import deep_set as deep_set
from .embedding import feature_mlp as feature_mlp
from .embedding import trace_cnn as trace_cnn
from .npe import NPEConfig as NPEConfig
from .npe import Posterior as Posterior
from .npe import TrainingHistory as TrainingHistory
from .npe import fit_npe as fit_npe
from .npe import load_posterior as load_posterior
from .npe import to_inference_data as to_inference_data
from .restriction import Validity as Validity
from .restriction import fit_validity as fit_validity
from .restriction import load_validity as load_validity
from .robust import fit_npe_rs as fit_npe_rs
from .snpe import RoundReport as RoundReport
from .snpe import SequentialResult as SequentialResult
from .snpe import restricted_posterior_sample as restricted_posterior_sample
from .snpe import sequential_npe as sequential_npe
from .snpe import truncated_prior_sample as truncated_prior_sample
from .temperature import fit_temperature as fit_temperature
from .temperature import temper as temper
