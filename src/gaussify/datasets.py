"""Offline datasets for examples, tests and benchmarks: nothing here downloads anything.

Every loader returns ``(X, y)`` as float32 features and integer labels (or a continuous
coordinate for manifolds without classes), generated with a seeded NumPy generator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["load", "NAMES", "digits", "mnist1d", "moons", "swiss_roll", "gaussian_mixture"]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: 1797 x 64, pixel values 0..16, 10 classes."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def mnist1d(n_samples: int = 4000, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D (Greydanus 2020) generated offline with ``mnist1d.data.make_dataset``: 40 features, 10 classes."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = int(n_samples)
    args.seed = int(random_state)
    data = make_dataset(args)
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return X, y


def moons(n_samples: int = 2000, noise: float = 0.08, n_noise_dims: int = 8,
          random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two moons in 2-D embedded in ``2 + n_noise_dims`` dimensions by a random rotation, plus small noise."""
    from sklearn.datasets import make_moons

    X2, y = make_moons(n_samples, noise=noise, random_state=random_state)
    return _embed(X2, n_noise_dims, random_state), y.astype(np.int64)


def swiss_roll(n_samples: int = 2000, noise: float = 0.1, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 3-D swiss roll; ``y`` is the position along the roll binned into 6 classes."""
    from sklearn.datasets import make_swiss_roll

    X, t = make_swiss_roll(n_samples, noise=noise, random_state=random_state)
    bins = np.quantile(t, np.linspace(0, 1, 7)[1:-1])
    return X.astype(np.float32), np.digitize(t, bins).astype(np.int64)


def gaussian_mixture(n_samples: int = 2000, n_components: int = 5, dim: int = 10, separation: float = 4.0,
                     random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters with centres drawn at distance ~``separation`` apart."""
    rng = np.random.default_rng(random_state)
    centres = rng.normal(size=(n_components, dim)) * separation / np.sqrt(2)
    y = rng.integers(n_components, size=n_samples)
    X = centres[y] + rng.normal(size=(n_samples, dim))
    return X.astype(np.float32), y.astype(np.int64)


def _embed(X: np.ndarray, n_noise_dims: int, random_state: int) -> np.ndarray:
    rng = np.random.default_rng(random_state + 1)
    padded = np.hstack([X, 0.05 * rng.normal(size=(X.shape[0], n_noise_dims))])
    q, _ = np.linalg.qr(rng.normal(size=(padded.shape[1], padded.shape[1])))
    return (padded @ q).astype(np.float32)


_LOADERS = {"digits": digits, "mnist1d": mnist1d, "moons": moons, "swiss_roll": swiss_roll,
            "gaussian_mixture": gaussian_mixture}
NAMES = tuple(_LOADERS)


def load(name: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset by name: one of ``NAMES``."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(NAMES)}") from None
    return loader(**kwargs)
