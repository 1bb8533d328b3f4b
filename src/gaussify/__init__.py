"""gaussify: make a learned embedding Gaussian, and measure how Gaussian it is."""

from .regularizers import (
    MMD,
    Adversarial,
    CramerWold,
    GaussianHead,
    KLDivergence,
    MomentMatching,
    Posterior,
    SIGReg,
    SlicedWasserstein,
    make_regularizer,
)
from .target import Gaussian

__version__ = "0.1.0"

__all__ = ["Gaussian", "make_regularizer", "GaussianHead", "Posterior", "KLDivergence", "MomentMatching",
           "Adversarial", "MMD", "SlicedWasserstein", "SIGReg", "CramerWold", "__version__"]
