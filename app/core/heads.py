"""Per-head softmax: turn similarities into probabilities that sum to 1 within each head.

A multi-head model (Hive) groups mutually exclusive classes into heads; each head is its own
distribution. A flat taxonomy is a single head. This module is shared by the zero-shot core and
the media module: keep the signature of :func:`head_softmax` stable.

>>> import numpy as np
>>> p = head_softmax(np.array([[0.9, 0.1, 0.5, 0.5]]), np.array([0, 0, 1, 1]), temperature=1.0)
>>> np.round(p, 3).tolist()
[[0.69, 0.31, 0.5, 0.5]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["head_softmax"]


def head_softmax(sims: np.ndarray, head_of_class: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``sims / temperature`` over the columns of each head, row by row.

    Parameters
    ----------
    sims:
        ``(n, C)`` scores (cosine similarities). Must be finite, except that ``-inf`` may mask a
        class as long as every head keeps at least one finite column in the row.
    head_of_class:
        ``(C,)`` integer head id of each column; ids need not be contiguous or sorted.
    temperature:
        ``> 0``; lower is sharper.

    Returns
    -------
    ``(n, C)`` float64 probabilities; for every row and head the head's columns sum to 1.

    >>> head_softmax(np.zeros((1, 3)), np.array([7, 7, 2]), 0.05).tolist()
    [[0.5, 0.5, 1.0]]
    """
    if not (temperature > 0.0) or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    z = np.asarray(sims, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"sims must be 2-D (n, C), got shape {z.shape}")
    heads = np.asarray(head_of_class)
    if heads.shape != (z.shape[1],):
        raise ValueError(f"head_of_class must have shape ({z.shape[1]},), got {heads.shape}")
    if z.shape[1] == 0 or z.shape[0] == 0:
        return np.zeros(z.shape, dtype=np.float64)

    # Sort columns by head once so every head is a contiguous block: then one reduceat per
    # statistic handles all heads of the whole batch, with no Python loop over heads.
    order = np.argsort(heads, kind="stable")
    sorted_heads = heads[order]
    starts = np.flatnonzero(np.r_[True, sorted_heads[1:] != sorted_heads[:-1]])
    block = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, sorted_heads.size]))

    zs = z[:, order] / temperature
    # Subtracting each head's row max keeps exp() in (0, 1]: no overflow however small T is.
    m = np.maximum.reduceat(zs, starts, axis=1)
    e = np.exp(zs - m[:, block])
    s = np.add.reduceat(e, starts, axis=1)
    out = np.empty_like(e)
    out[:, order] = e / s[:, block]
    return out
