"""Number formatting shared by the metrics' reports (text, markdown, HTML)."""

from __future__ import annotations

import numpy as np

__all__ = ["format_number", "format_pvalue"]


def format_number(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, in scientific notation when it is that large (|x| ≥ 10⁵) or that small
    (0 < |x| < 10^-digits), so that nothing prints as a 17-digit integer or as a misleading 0.0000."""
    if np.isfinite(value) and value != 0 and not 10.0 ** -digits <= abs(value) < 1e5:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}f}"


def format_pvalue(p: float) -> str:
    """A p-value with 3 significant digits; one that underflowed double precision prints as ``<1e-300``,
    never as 0."""
    return "<1e-300" if p < 1e-300 else f"{p:.3g}"
