"""Dense integer codes for labels (group ids, anchors, transition keys).

``np.unique`` sorts, which is slow for strings (fixed-width UTF-32 compares); a dict
maps each distinct label to a code in one pass.
"""

from __future__ import annotations

import numpy as np

__all__ = ["factorize"]


def factorize(*columns) -> np.ndarray:
    """Code per row: rows are equal iff all their columns are equal.

    Each column is 1-D (ints, strings, any hashables), all of one length. Returns an
    ``intp`` array of codes 0..n_distinct-1 (their order is unspecified).
    """
    if not columns:
        raise ValueError("factorize needs at least one column")
    if len(columns) > 1:
        codes = [factorize(c) for c in columns]
        if any(c.size != codes[0].size for c in codes):
            raise ValueError(f"label columns differ in length: {[c.size for c in codes]}")
        # pairs of dense codes as one int (no overflow: both < n), dense again each time
        combined = codes[0]
        for c in codes[1:]:
            combined = factorize(combined.astype(np.int64) * (int(c.max(initial=-1)) + 1) + c)
        return combined
    col = columns[0]
    if isinstance(col, np.ndarray) and col.ndim == 1 and col.size > 1:
        starts = np.concatenate(([0], np.flatnonzero(col[1:] != col[:-1]) + 1))
        if 4 * starts.size <= col.size:
            # long runs (a group label repeated on each of its steps): code the runs only
            return np.repeat(factorize(col[starts]), np.diff(np.append(starts, col.size)))
        if col.dtype.kind in "biu":
            lo = int(col.min())
            span = int(col.max()) - lo + 1
            if span <= 4 * col.size:                      # small range: no sort needed
                present = np.zeros(span, dtype=bool)
                present[col - lo] = True
                return (np.cumsum(present) - 1)[col - lo].astype(np.intp)
    if isinstance(col, np.ndarray) and col.dtype.kind in "biuf":
        _, inverse = np.unique(col.reshape(-1), return_inverse=True)
        return inverse.reshape(-1).astype(np.intp, copy=False)
    values = col.tolist() if isinstance(col, np.ndarray) else list(col)
    index = {v: i for i, v in enumerate(dict.fromkeys(values))}
    return np.fromiter(map(index.__getitem__, values), dtype=np.intp, count=len(values))
