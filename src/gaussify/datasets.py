"""Offline datasets for examples, tests and benchmarks: nothing here downloads anything.

Every loader returns ``(X, y)`` as float32 features and integer labels (or a continuous
coordinate for manifolds without classes), generated with a seeded NumPy generator.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_int, check_real

__all__ = ["load", "NAMES", "digits", "mnist1d", "moons", "swiss_roll", "gaussian_mixture"]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: 1797 x 64, pixel values 0..16, 10 classes.

    Examples
    --------
    >>> from gaussify.datasets import digits
    >>> X, y = digits()
    >>> X.shape, X.dtype, y.shape
    ((1797, 64), dtype('float32'), (1797,))
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def mnist1d(n_samples: int = 4000, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D (Greydanus 2020) generated offline with ``mnist1d.data.make_dataset``: 40 features, 10 classes.

    Parameters
    ----------
    n_samples : int, default 4000
        The number of rows (the package's train and test splits together).
    random_state : int, default 0
        Seed of the generator.

    Examples
    --------
    >>> from gaussify.datasets import mnist1d
    >>> X, y = mnist1d(n_samples=100)
    >>> X.shape, X.dtype, y.shape
    ((100, 40), dtype('float32'), (100,))
    """
    _check_common(n_samples, random_state)
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
    """Two moons in 2-D embedded in ``2 + n_noise_dims`` dimensions by a random rotation, plus small noise.

    Parameters
    ----------
    n_samples : int, default 2000
    noise : float, default 0.08
        Standard deviation of scikit-learn's noise on the 2-D moons.
    n_noise_dims : int, default 8
        Extra dimensions of small noise (standard deviation 0.05) before the rotation.
    random_state : int, default 0

    Examples
    --------
    >>> from gaussify.datasets import moons
    >>> X, y = moons(n_samples=100)
    >>> X.shape, X.dtype, y.shape
    ((100, 10), dtype('float32'), (100,))
    """
    _check_common(n_samples, random_state, noise)
    check_int(n_noise_dims, "n_noise_dims", minimum=0)
    from sklearn.datasets import make_moons

    X2, y = make_moons(n_samples, noise=noise, random_state=random_state)
    return _embed(X2, n_noise_dims, random_state), y.astype(np.int64)


def swiss_roll(n_samples: int = 2000, noise: float = 0.1, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 3-D swiss roll; ``y`` is the position along the roll binned into 6 classes.

    Parameters
    ----------
    n_samples : int, default 2000
    noise : float, default 0.1
    random_state : int, default 0

    Examples
    --------
    >>> from gaussify.datasets import swiss_roll
    >>> X, y = swiss_roll(n_samples=100)
    >>> X.shape, X.dtype, y.shape
    ((100, 3), dtype('float32'), (100,))
    >>> sorted(set(y.tolist()))
    [0, 1, 2, 3, 4, 5]
    """
    _check_common(n_samples, random_state, noise)
    from sklearn.datasets import make_swiss_roll

    X, t = make_swiss_roll(n_samples, noise=noise, random_state=random_state)
    bins = np.quantile(t, np.linspace(0, 1, 7)[1:-1])
    return X.astype(np.float32), np.digitize(t, bins).astype(np.int64)


def gaussian_mixture(n_samples: int = 2000, n_components: int = 5, dim: int = 10, separation: float = 4.0,
                     random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters with centres drawn at distance ~``separation`` apart.

    Parameters
    ----------
    n_samples : int, default 2000
    n_components : int, default 5
        The number of clusters.
    dim : int, default 10
    separation : float, default 4.0
        The typical distance between centres.
    random_state : int, default 0

    Examples
    --------
    >>> from gaussify.datasets import gaussian_mixture
    >>> X, y = gaussian_mixture(n_samples=100, dim=3)
    >>> X.shape, X.dtype, y.shape
    ((100, 3), dtype('float32'), (100,))
    """
    _check_common(n_samples, random_state)
    check_int(n_components, "n_components")
    check_int(dim, "dim")
    check_real(separation, "separation")
    rng = np.random.default_rng(random_state)
    centres = rng.normal(size=(n_components, dim)) * separation / np.sqrt(2)
    y = rng.integers(n_components, size=n_samples)
    X = centres[y] + rng.normal(size=(n_samples, dim))
    return X.astype(np.float32), y.astype(np.int64)


def _check_common(n_samples: object, random_state: object, noise: object = 0.0) -> None:
    """The parameters every generated data set has, checked before any work."""
    check_int(n_samples, "n_samples")
    check_int(random_state, "random_state", minimum=0)
    check_real(noise, "noise")


def _embed(X: np.ndarray, n_noise_dims: int, random_state: int) -> np.ndarray:
    rng = np.random.default_rng(random_state + 1)
    padded = np.hstack([X, 0.05 * rng.normal(size=(X.shape[0], n_noise_dims))])
    q, _ = np.linalg.qr(rng.normal(size=(padded.shape[1], padded.shape[1])))
    return (padded @ q).astype(np.float32)


_LOADERS = {"digits": digits, "mnist1d": mnist1d, "moons": moons, "swiss_roll": swiss_roll,
            "gaussian_mixture": gaussian_mixture}
NAMES = tuple(_LOADERS)


def load(name: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset by name: one of ``NAMES``.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    **kwargs
        Keywords of the loader.

    Returns
    -------
    X : ndarray of float32, shape (n, n_features)
    y : ndarray of int64, shape (n,)

    Examples
    --------
    >>> from gaussify.datasets import NAMES, load
    >>> NAMES
    ('digits', 'mnist1d', 'moons', 'swiss_roll', 'gaussian_mixture')
    >>> X, y = load("moons", n_samples=100, n_noise_dims=0)
    >>> X.shape
    (100, 2)
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(NAMES)}") from None
    return loader(**kwargs)
