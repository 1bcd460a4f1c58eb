"""A level guess from body size when no anatomical anchor is in view.

With no sacrum, no rib transition and no dens in the field of view, nothing in the image
says which vertebra is which.  The region still shows: cervical bodies are small and
closely spaced, thoracic vertebrae carry ribs, lumbar bodies are large and far apart.
Within a region the bodies grow caudally, so the best-fitting window of a table of
typical adult sizes gives a guess, to be confirmed by the user: its confidence stays low
(see :data:`GUESS_CONFIDENCE`) and the message says how the names were found.

The table holds typical adult figures (body depth and height, disc height by VerSe
label) of the kind published in morphometric series; individual spines differ by 10-20 %,
which is one or two levels in the thoracic spine, hence the low confidence.
"""

from __future__ import annotations

import numpy as np

from needleplan.segmentation.model import VERSE_NAMES

__all__ = ["GUESS_CONFIDENCE", "guess_levels_from_size", "typical_body_depth_mm", "typical_pitch_mm"]

#: Confidence of a guess: clear region and a clear best window / anything less clear.
GUESS_CONFIDENCE = (0.3, 0.15)

# VerSe label: typical adult value (mm); C3 = 3, C7 = 7, T1 = 8, T4 = 11, T8 = 15, T10 = 17,
# T12 = 19, L1 = 20 ... L5 = 24.  Interpolated linearly between the keys.
_BODY_DEPTH = {3: 16.0, 7: 17.0, 8: 17.5, 11: 22.0, 15: 27.0, 17: 30.0, 19: 35.0, 20: 41.0,
               21: 42.5, 22: 44.0, 23: 45.5, 24: 47.0}
_BODY_HEIGHT = {3: 13.0, 7: 14.5, 8: 15.5, 11: 17.0, 15: 19.0, 17: 21.0, 19: 23.5, 20: 25.0,
                21: 26.0, 22: 27.0, 23: 27.0, 24: 26.0}
_DISC_HEIGHT = {3: 5.0, 7: 5.5, 8: 4.5, 13: 5.0, 19: 7.0, 20: 9.0, 21: 10.0, 22: 11.0, 23: 11.0,
                24: 10.5}

#: Candidate label ranges (cranial, caudal) of each region with a body (C1 and C2 are found
#: from the dens, not by size).
REGIONS = {"cervical": (3, 7), "thoracic": (8, 19), "lumbar": (20, 24)}
#: Spread of the measurements against the table (mm): body half-depth, body pitch.
SIGMA_RADIUS_MM, SIGMA_PITCH_MM = 2.0, 3.0


def _interp(table: dict[int, float], label) -> np.ndarray:
    keys = np.array(sorted(table), float)
    return np.interp(np.asarray(label, float), keys, [table[int(k)] for k in keys])


def typical_body_depth_mm(label) -> np.ndarray:
    """Typical adult antero-posterior body depth (mm) of VerSe level(s) ``label`` (3-24)."""
    return _interp(_BODY_DEPTH, label)


def typical_pitch_mm(label) -> np.ndarray:
    """Typical distance (mm) from a body's centre to the next one below: height + disc."""
    return _interp(_BODY_HEIGHT, label) + _interp(_DISC_HEIGHT, label)


def guess_levels_from_size(radius_mm, pitch_mm: float, has_rib) -> tuple[list[int], float, str]:
    """Name n pieces (caudal first) from their size.

    Parameters
    ----------
    radius_mm : (n,) array_like
        Half the body's smaller in-plane dimension per piece (the column's inscribed radius), mm.
    pitch_mm : float
        Median distance between successive body centres, mm.
    has_rib : (n,) sequence of bool
        Whether each piece carries a rib.

    Returns
    -------
    labels : list of int
        VerSe labels, caudal first.
    confidence : float
    message : str
    """
    r = np.asarray(radius_mm, float)
    n = len(r)
    regions = ["thoracic"] if any(has_rib) else ["cervical", "lumbar"]
    fits = []  # (cost, region, caudal label)
    for reg in regions:
        top, bottom = REGIONS[reg]
        if n > bottom - top + 1:
            # more pieces than the region holds: let the window run past its end
            starts = [bottom]
        else:
            starts = range(top + n - 1, bottom + 1)
        for caudal in starts:
            labs = caudal - np.arange(n)
            cost = np.mean(((r - typical_body_depth_mm(labs) / 2.0) / SIGMA_RADIUS_MM) ** 2)
            cost += ((pitch_mm - float(np.mean(typical_pitch_mm(labs)))) / SIGMA_PITCH_MM) ** 2
            fits.append((float(cost), reg, int(caudal)))
    fits.sort()
    cost, reg, caudal = fits[0]
    labels = [caudal - m if caudal - m >= 1 else 0 for m in range(n)]
    other = [c for c, rg, _ in fits[1:] if rg != reg]
    sure_region = not other or other[0] - cost > 4.0
    sure_window = len(fits) == 1 or fits[1][0] - cost > 1.0
    conf = GUESS_CONFIDENCE[0] if sure_region and sure_window else GUESS_CONFIDENCE[1]
    names = [VERSE_NAMES.get(lab, "?") for lab in labels if lab]
    span = f"{names[-1]}-{names[0]}" if len(names) > 1 else (names[0] if names else "?")
    why = "ribs on every vertebra" if reg == "thoracic" else "no ribs"
    msg = (f"no anchor in view (no sacrum, no last or first rib, no dens): {reg} spine from body "
           f"size and {why}; levels {span} are a guess from typical adult body sizes "
           f"(median half-depth {np.median(r):.0f} mm, pitch {pitch_mm:.0f} mm): confirm or correct them")
    return labels, conf, msg
