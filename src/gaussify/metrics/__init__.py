"""How Gaussian is an embedding? KL to the target with its shape/placement split, lower bounds, where the
non-Gaussianity is (placement by direction, the most non-Gaussian directions, the radial part), calibrated normality
tests, label-free effective ranks (RankMe, LiDAR), and :func:`evaluate` which gathers them
in a report (NumPy/SciPy only)."""

from .batch import BATCH_STATISTICS, batch_pvalue
from .directions import (PlacementDirections, PursuitDirections, RadialPart, WhereNonGaussian,
                         non_gaussian_directions, placement_directions, radial_part, where_non_gaussian)
from .divergence import (BOUND_LEVEL, HIGH_DIM_ROWS, KL_METHODS, KLEstimate, atoms, entropy_knn, kl_divergence,
                         kl_lower_bounds, kl_method, marginal_negentropy, mmd_to_gaussian, negentropy, placement_bias,
                         placement_kl, radial_kl, sliced_negentropy, sliced_wasserstein_to_gaussian)
from .estimators.knn import RELIABLE_MAX_DIM
from .normality import (TEST_NAMES, TestResult, coordinate_tests, doornik_hansen, energy_test, epps_pulley,
                        henze_zirkler, mahalanobis_radius_test, mardia_kurtosis, mardia_skewness, normality_tests)
from .report import FAST_TESTS, MIN_ROWS, GaussianityReport, evaluate
from .ssl import lidar, rankme
from .streaming import StreamingResult, evaluate_streaming

__all__ = ["evaluate", "GaussianityReport", "FAST_TESTS", "MIN_ROWS", "evaluate_streaming", "StreamingResult",
           "batch_pvalue", "BATCH_STATISTICS", "rankme", "lidar",
           "KLEstimate", "kl_divergence", "kl_method", "KL_METHODS", "HIGH_DIM_ROWS", "negentropy",
           "entropy_knn", "placement_kl", "placement_bias", "radial_kl", "marginal_negentropy", "sliced_negentropy",
           "kl_lower_bounds", "atoms", "BOUND_LEVEL",
           "where_non_gaussian", "WhereNonGaussian", "placement_directions", "PlacementDirections",
           "non_gaussian_directions", "PursuitDirections", "radial_part", "RadialPart",
           "mmd_to_gaussian", "sliced_wasserstein_to_gaussian", "RELIABLE_MAX_DIM", "TestResult", "TEST_NAMES",
           "normality_tests", "mardia_skewness", "mardia_kurtosis", "henze_zirkler", "energy_test", "epps_pulley",
           "doornik_hansen", "coordinate_tests", "mahalanobis_radius_test"]
