"""The seed-000 studies of misspecification: model discrimination (Q1), robustness (Q2), prior transfer (Q3)."""

from .discrimination import Discrimination as Discrimination
from .discrimination import ModelClassifier as ModelClassifier
from .discrimination import discriminate as discriminate
from .discrimination import train_classifier as train_classifier
