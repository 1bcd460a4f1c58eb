"""Level names from anatomy: the sacrum, the ribs (T12 / T1), C2's dens and counting.

The vertebra pieces of :mod:`._v_label` are numbered 1..n from caudal to cranial.  Four
anatomical anchors name them:

* **sacrum**: the lowest piece is the sacrum when it runs on without a disc for more
  than a vertebral pitch and large bone (the ilia) flanks it; the piece above is L5;
* **T12**: the lowest vertebra carrying a rib (bone outside the vertebra's envelope that
  touches it laterally and reaches far out) while a rib-free vertebra lies below it;
* **T1**: the highest rib-bearing vertebra with a rib-free one (C7) above it;
* **C2**: the vertebra whose dens rises into the ring of C1 (:mod:`._v_atlas`); the
  ring above it, which has no body, is C1.

When both rib anchors are in view and thirteen rib-bearing vertebrae run from T1 to the
lowest one inclusive, the lowest is a thirteenth thoracic vertebra, T13
(:func:`thirteenth_thoracic`); the vertebrae below it are counted as lumbar from L1.

Names are counted from the most trusted anchor; agreement between two anchors (five
lumbar vertebrae between T12 and the sacrum, eleven between T1 and T12) raises the
confidence, disagreement is reported.  Without any anchor the names are a guess from
body size (:mod:`._levels_size`) or a caller's hint, with low confidence, and the messages
say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._levels_size import guess_levels_from_size
from needleplan.segmentation._v_column import Column
from needleplan.segmentation._v_label import LATERAL, Segments
from needleplan.segmentation.model import VERSE_NAMES, level_label

__all__ = ["Naming", "dens_anchor", "find_ribs", "is_sacrum", "name_levels", "thirteenth_thoracic"]

SACRUM = 26
T12 = 19
T1 = 8
L5 = 24
L1 = 20
T13 = 28
#: Rib-bearing vertebrae from T1 to the lowest one (inclusive) that make the lowest T13.
T13_COUNT = 13
C2 = 2
#: Smallest plausible ratio of the body pitch to the body's inscribed radius, and the factor
#: on the naming confidence below it (see :func:`_pitch_doubt`).
PITCH_MIN_RATIO, PITCH_DOUBT_FACTOR = 1.2, 0.3
#: A rib runs on at least this far (mm) beyond the vertebra's lateral envelope (the search
#: band reaches 40 mm): measured 33-40 mm for real ribs (lidc T12-T2, phantoms T7-T12), 26-28
#: mm for ts-abdomen's T12 rib leaving its 3 mm view, at most 23 mm for the bone beside a
#: turned neck (C1's transverse process, neck bone).
RIB_REACH_MM = 25.0
#: Largest plausible ratio of the body pitch to the body's inscribed radius (a missed disc
#: doubles the pitch; see :func:`_pitch_doubt`).
PITCH_MAX_RATIO = 3.2


@dataclass
class Naming:
    """VerSe label of each piece (index 0 = piece 1) and how sure we are."""

    labels: list[int]
    confidence: list[float]
    naming_confidence: float
    messages: list[str] = field(default_factory=list)


def _piece_geometry(grid: WorkGrid, col: Column, seg: Segments, m: int):
    a, b = seg.bounds[m - 1]
    z = col.z[a:b + 1]
    xy = col.xy[a:b + 1]
    return z, xy


def find_ribs(grid: WorkGrid, col: Column, seg: Segments) -> list[tuple[str, str]]:
    """(left, right) lateral bone joined to every piece: ``"rib"``, ``"plate"`` or ``""``.

    A rib is "other bone" (outside every vertebra) that touches the vertebra (within
    ~5 mm) lateral to its body and runs on beyond the vertebra's lateral envelope by at
    least :data:`RIB_REACH_MM` as a slender bar, farther than any transverse process: where
    it crosses the 40 mm beyond the envelope its cranio-caudal extent stays under 45 mm.
    Shorter bone (C1's transverse processes, bone beside a turned neck) is no rib.  A taller
    structure is a "plate" (the ilium joined to the sacrum's lateral mass).  The atlas,
    which has no body, is given the envelope of C2's body below it.  A rib whose medial end (its head and neck) lies
    beside another vertebra, clearly nearer to it than to this one, belongs to that one: on
    the concave side of a scoliosis the last rib can pass close to the next vertebra's
    transverse process.
    """
    sp = grid.spacing_mm
    lab = seg.labels
    other = lab == seg.n + 1
    rmed = float(np.median(col.radius_mm))
    env_mm = LATERAL * rmed
    z0 = int(col.z[0])
    nzc = len(col.z)
    r = np.maximum(1, np.round(5.0 / sp)).astype(int)
    boxes = ndi.find_objects(lab, max_label=seg.n)
    atlas = int(getattr(seg, "atlas", 0) or 0)
    out = []
    for m in range(1, seg.n + 1):
        box = boxes[m - 1]
        if box is None:
            out.append(("", ""))
            continue
        # the atlas has no body: its envelope is that of C2's body below it
        a, b = seg.bounds[m - 2 if m == atlas and m > 1 else m - 1]
        rl = float(np.clip(np.median(col.radius_mm[a:b + 1]), 0.6 * rmed, 1.5 * rmed))
        env_mm = LATERAL * rl
        # crop: the piece's box widened by the search band (laterally) and 40 mm (z)
        padx = int(np.ceil((env_mm + 45.0) / sp[0]))
        pady = int(np.ceil(20.0 / sp[1]))
        padz = int(np.ceil(40.0 / sp[2]))
        cxm = int(round(float(np.median(col.xy[a:b + 1, 0]))))
        x0, x1 = max(0, cxm - padx), min(lab.shape[0], cxm + padx + 1)
        y0, y1 = max(0, box[1].start - pady), min(lab.shape[1], box[1].stop + pady)
        k0, k1 = max(0, box[2].start - padz), min(lab.shape[2], box[2].stop + padz)
        sub_piece = lab[x0:x1, y0:y1, k0:k1] == m
        sub_other = other[x0:x1, y0:y1, k0:k1]
        kk = np.arange(k0, k1)
        cx = col.xy[np.clip(kk - z0, 0, nzc - 1), 0]  # column x per slice (voxels)
        dx = (np.arange(x0, x1)[:, None] - cx[None, :]) * sp[0]  # (X, Z) mm
        dx3 = dx[:, None, :]
        touch = ndi.maximum_filter(sub_piece, size=tuple(2 * r + 1)) & sub_other
        dist = []  # lazily: distance (mm) to this piece and to the other pieces in the crop
        sides = []
        for sign in (1, -1):
            sdx = sign * dx3
            region = sub_other & (sdx > 1.2 * rl) & (sdx < env_mm + 40.0)
            t = touch & region
            if not t.any():
                sides.append("")
                continue
            comp, _ = ndi.label(region, structure=np.ones((3, 3, 3), bool))
            ids = np.unique(comp[t])
            ids = ids[ids > 0]
            found = ""
            for c in ids:
                cm = comp == c
                far = cm & (sdx >= env_mm + 15.0)
                if not far.any():
                    continue
                band = cm & (sdx >= env_mm)
                zz = np.nonzero(band.any(axis=(0, 1)))[0]
                if (zz[-1] - zz[0] + 1) * sp[2] <= 45.0:
                    if float(np.broadcast_to(sdx, cm.shape)[cm].max()) < env_mm + RIB_REACH_MM:
                        continue  # ends like a transverse process: not a rib
                    if not dist:
                        sub = lab[x0:x1, y0:y1, k0:k1]
                        others = (sub >= 1) & (sub <= seg.n) & ~sub_piece
                        dist += [ndi.distance_transform_edt(~sub_piece, sampling=sp),
                                 ndi.distance_transform_edt(~others, sampling=sp) if others.any() else None]
                    if not _rib_is_own(cm, sdx, *dist):
                        continue
                    found = "rib"
                    break
                found = "plate"
            sides.append(found)
        out.append((sides[0], sides[1]))
    return out


def _rib_is_own(comp, sdx, d_own, d_other, *, end_mm: float = 6.0, margin_mm: float = 5.0) -> bool:
    """Whether a rib's medial end (within ``end_mm`` of its most medial voxel) lies beside
    this piece: not nearer to another piece by more than ``margin_mm`` (a rib head on a
    disc between two vertebrae counts for both)."""
    if d_other is None:
        return True
    s = np.broadcast_to(sdx, comp.shape)[comp]
    end = np.zeros(comp.shape, bool)
    end[comp] = s <= s.min() + end_mm
    return bool(np.median(d_own[end]) - np.median(d_other[end]) <= margin_mm)


def is_sacrum(grid: WorkGrid, col: Column, seg: Segments, pitch_mm: float) -> tuple[bool, str]:
    """Is piece 1 (the lowest) the sacrum?  Returns (answer, reason)."""
    if seg.n == 0 or not seg.partial[0] or seg.bounds[0][0] != 0:
        return False, "lowest vertebra bounded by a disc below"
    sp = grid.spacing_mm
    a, b = seg.bounds[0]
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(col.points_ijk() * sp, axis=0), axis=1))]
    length = arc[b] - arc[a]
    lab = seg.labels
    other = lab == seg.n + 1
    rmed = float(np.median(col.radius_mm))
    # large bone on both sides at the level of the piece: the ilia
    k0, k1 = int(col.z[a]), int(col.z[b]) + 1
    ii, jj, kk = np.nonzero(other[:, :, k0:k1])
    if len(ii) == 0:
        return False, "no pelvis beside the lowest vertebra"
    zc = np.clip(kk + k0 - int(col.z[0]), 0, len(col.z) - 1)
    dx = (ii - col.xy[zc, 0]) * sp[0]
    vox_ml = np.prod(sp) / 1000.0
    left = np.sum((dx > 2.5 * rmed) & (dx < 160)) * vox_ml
    right = np.sum((-dx > 2.5 * rmed) & (-dx < 160)) * vox_ml
    ilia = left > 15.0 and right > 15.0
    long_enough = length >= 1.1 * pitch_mm
    if ilia and long_enough:
        return True, f"sacrum found ({length:.0f} mm without a disc, ilia on both sides)"
    if ilia:
        return False, f"bone beside the lowest vertebra but only {length:.0f} mm in view"
    return False, "no ilia beside the lowest vertebra"


def _touches_ilia(grid: WorkGrid, col: Column, seg: Segments, m: int, *, gap_mm: float = 6.0) -> bool:
    """Piece ``m`` lies within ``gap_mm`` of other bone on both sides (sacro-iliac joints)."""
    sp = grid.spacing_mm
    piece = seg.labels == m
    if not piece.any():
        return False
    other = seg.labels == seg.n + 1
    r = np.maximum(1, np.round(gap_mm / sp)).astype(int)
    near = ndi.maximum_filter(piece, size=tuple(2 * r + 1)) & other
    ii, jj, kk = np.nonzero(near)
    if len(ii) < 3:
        return False
    zc = np.clip(kk - int(col.z[0]), 0, len(col.z) - 1)
    dx = (ii - col.xy[zc, 0]) * sp[0]
    rmed = float(np.median(col.radius_mm))
    return bool(np.sum(dx > 2.0 * rmed) >= 3 and np.sum(dx < -2.0 * rmed) >= 3)


def _count(anchor_piece: int, anchor_label: int, n: int, lumbar: int = 5) -> list[int]:
    """Labels of pieces 1..n counted from one anchor (piece index, VerSe label)."""
    order = []  # cranio-caudal sequence of VerSe labels: 1..7 C, 8..19 T, 20..(19+lumbar) L, 26 S
    order += list(range(1, 20))
    order += list(range(20, 20 + lumbar))
    order += [SACRUM]
    pos = order.index(anchor_label)
    out = []
    for m in range(1, n + 1):
        p = pos - (m - anchor_piece)  # higher piece index = more cranial = earlier in order
        out.append(order[p] if 0 <= p < len(order) else 0)
    return out


def thirteenth_thoracic(t1_piece: int | None, lowest_rib_piece: int | None, has_rib) -> int | None:
    """Piece of a thirteenth thoracic vertebra, or None.

    Parameters
    ----------
    t1_piece, lowest_rib_piece : int or None
        Pieces (1-based, caudal first) of the T1 anchor (highest rib-bearing vertebra with a
        rib-free one above) and of the lowest rib-bearing vertebra with a rib-free one
        below; None when that anchor is not in view.
    has_rib : sequence of bool
        Per piece, whether a rib was found on either side.

    Returns
    -------
    int or None
        ``lowest_rib_piece`` when :data:`T13_COUNT` vertebrae run from it to ``t1_piece``
        inclusive and all but at most two of them carry a rib where it can be seen (the
        small ribs of T1 and T12/T13 can be missed), else None.
    """
    if t1_piece is None or lowest_rib_piece is None:
        return None
    if t1_piece - lowest_rib_piece + 1 != T13_COUNT:
        return None
    seen = sum(bool(has_rib[m - 1]) for m in range(lowest_rib_piece, t1_piece + 1))
    return int(lowest_rib_piece) if seen >= T13_COUNT - 2 else None


def _count_with_t13(t13_piece: int, n: int, lumbar: int = 5) -> list[int]:
    """Labels of pieces 1..n when piece ``t13_piece`` is T13 (T12 above it, L1 below)."""
    up = _count(t13_piece + 1, T12, n, lumbar=lumbar)
    down = _count(t13_piece - 1, L1, n, lumbar=lumbar)
    return [down[m - 1] if m < t13_piece else T13 if m == t13_piece else up[m - 1]
            for m in range(1, n + 1)]


def _apply_t13(anchors: list, has_rib, msgs: list[str]) -> int | None:
    """Turn the T12 anchor into T13 when :func:`thirteenth_thoracic` says so (in place)."""
    t1 = next((a for a in anchors if a[1] == T1), None)
    t12 = next((a for a in anchors if a[1] == T12), None)
    piece = thirteenth_thoracic(t1[0] if t1 else None, t12[0] if t12 else None, has_rib)
    if piece is None:
        return None
    i = anchors.index(t12)
    anchors[i] = (piece, T13, t12[2], "thirteen rib-bearing vertebrae from T1: the lowest one "
                  "is T13 (a thirteenth thoracic vertebra), the one below it L1")
    msgs.append("13 rib-bearing vertebrae counted from T1: the lowest rib-bearing vertebra is named T13")
    return piece


def dens_anchor(seg: Segments):
    """C2 named from its dens: ``(piece, label, confidence, message)`` or None.

    :mod:`._v_atlas` splits C1 off the most cranial piece when the body column rises from
    that piece's body into a peg (the dens) inside a ring of bone without a body of its own
    (the atlas); the piece below the ring is C2, the ring C1 (counted from it).
    """
    atlas = int(getattr(seg, "atlas", 0) or 0)
    if atlas < 2 or atlas > seg.n:
        return None
    return (atlas - 1, C2, 0.9, "C2 identified by its dens inside the ring of C1 (no body of its own)")


def name_levels(grid: WorkGrid, col: Column, seg: Segments, *, pitch_mm: float,
                hint: tuple[str, int] | None = None) -> Naming:
    """Name the pieces; see the module docstring.

    Parameters
    ----------
    hint : (level name, piece index) or None
        A caller's statement that piece ``index`` (1-based, caudal first) is ``level``;
        used only when no anatomical anchor is in view.
    """
    n = seg.n
    msgs: list[str] = []
    lateral = find_ribs(grid, col, seg)
    ribs = [(lft == "rib", rgt == "rib") for lft, rgt in lateral]
    has_rib = [lft or rgt for lft, rgt in ribs]
    sac, why = is_sacrum(grid, col, seg, pitch_mm)
    msgs.append(why)
    dens = dens_anchor(seg)
    if dens is not None:
        # C1-C6 (counted down from the dens) carry no rib: lateral bone there is a transverse
        # process or the atlas's lateral mass turned out of the vertebra's envelope
        cleared = [m for m in range(max(1, dens[0] - 4), n + 1) if has_rib[m - 1]]
        for m in cleared:
            has_rib[m - 1] = False
            ribs[m - 1] = (False, False)
        if cleared:
            msgs.append("bone beside C1-C6 (counted from the dens) taken for a transverse process, not a rib")

    anchors = []  # (piece, label, confidence, message)

    def t12_anchor(top_sacral: int):
        """Lowest rib-bearing piece with a complete rib-free piece below (above the sacrum)."""
        for m in range(top_sacral + 1, n + 1):
            if has_rib[m - 1]:
                below = list(range(top_sacral + 1, m))
                full_below = [k for k in below if not seg.partial[k - 1]]
                if full_below and not any(has_rib[k - 1] for k in below):
                    both = all(ribs[m - 1])
                    return (m, T12, 0.85 if both else 0.65,
                            "lowest rib-bearing vertebra taken as T12"
                            + ("" if both else " (rib seen on one side only)"))
                return None
        return None

    top_sacral = 0
    if sac:
        # a rudimentary S1/S2 disc may split off S1: pieces joined to the ilia can be sacrum
        strict, loose = [1], [1]
        for m in range(2, min(3, n - 1) + 1):
            plate = lateral[m - 1] == ("plate", "plate")
            touch = _touches_ilia(grid, col, seg, m)
            if not (plate or touch):
                break
            loose.append(m)
            if plate and touch and len(strict) == m - 1:
                strict.append(m)
        top_sacral = strict[-1]
        # with a T12 rib in view, prefer the split that leaves five lumbar vertebrae
        for top in loose:
            t = t12_anchor(top)
            if t is not None and t[0] - top - 1 == 5:
                top_sacral = top
                break
        if top_sacral > 1:
            msgs.append("a sacral segment next to the sacro-iliac joints was merged into the sacrum")
        anchors.append((top_sacral, SACRUM, 0.9, "lowest bone taken as the sacrum"))
        for m in range(1, top_sacral + 1):
            has_rib[m - 1] = False
    t12 = t12_anchor(top_sacral)
    if t12 is not None:
        anchors.append(t12)
    # T1: highest rib-bearing piece with a rib-free piece above it
    for m in range(n, 0, -1):
        if has_rib[m - 1]:
            above = list(range(m + 1, n + 1))
            full_above = [k for k in above if not seg.partial[k - 1]]
            if full_above and not any(has_rib[k - 1] for k in above):
                anchors.append((m, T1, 0.7, "highest rib-bearing vertebra taken as T1"))
            break

    t13_piece = _apply_t13(anchors, has_rib, msgs)
    if dens is not None:
        # the dens is surer than a rib (no rib to miss or to invent beside a turned neck): count
        # from it (or from the sacrum), a rib anchor that disagrees lowers the confidence and
        # the messages say so
        anchors.insert(1 if anchors and anchors[0][1] == SACRUM else 0, dens)

    lumbar = 5
    conf_scale = 1.0
    if sac and any(a[1] in (T12, T13) for a in anchors):
        t12 = next(a for a in anchors if a[1] in (T12, T13))
        nl = t12[0] - top_sacral - 1  # pieces strictly between the sacrum and T12
        if nl == 5:
            msgs.append(f"five lumbar vertebrae between {VERSE_NAMES[t12[1]]} and the sacrum: "
                        "rib and sacrum agree")
            conf_scale = 1.1
        else:
            msgs.append(f"{nl} rib-free vertebrae between the last rib and the sacrum "
                        "(transitional anatomy or a missed rib/disc): counted from "
                        + ("T1" if t13_piece else "the sacrum") + ", check the level names")
            conf_scale = 0.6
            if nl == 6:
                lumbar = 6
                msgs.append("six lumbar-type vertebrae: the one above the sacrum is named L6")

    if anchors:
        piece, label, conf, text = anchors[0]
        msgs.append(text)
        labels = _count(piece, label, n, lumbar=lumbar) if t13_piece is None \
            else _count_with_t13(t13_piece, n, lumbar=lumbar)
        # agreement with the other anchors
        for p2, l2, _c2, t2 in anchors[1:]:
            got = labels[p2 - 1]
            if got == l2:
                conf = min(0.97, conf + 0.08)
                msgs.append(t2 + ": consistent")
            elif label == SACRUM and l2 == T12 and conf_scale < 1.0:
                pass  # already reported above
            else:
                conf *= 0.6
                msgs.append(f"{t2}, but counting gives {VERSE_NAMES.get(got, '?')}: check the level names")
        conf = min(0.97, conf * conf_scale)
        confs = [max(0.05, conf - 0.02 * abs(m - piece)) for m in range(1, n + 1)]
    elif hint is not None:
        name, piece = hint
        lab = level_label(name)
        labels = _count_with_t13(int(piece), n) if lab == T13 else _count(int(piece), lab, n)
        conf = 0.5
        confs = [conf] * n
        msgs.append(f"no sacrum, rib or dens anchor in view: levels counted from the given hint ({name})")
    else:
        radius = [float(np.median(col.radius_mm[a:b + 1])) for a, b in seg.bounds]
        labels, conf, text = guess_levels_from_size(radius, pitch_mm, has_rib)
        msgs.append(text)
        confs = [conf] * n
    for m in range(1, top_sacral + 1):
        labels[m - 1] = SACRUM
    # pieces counted past C1 get no name
    for m, lab in enumerate(labels):
        if lab == 0:
            msgs.append(f"vertebra {m + 1} (caudal first) could not be named and was dropped")
    doubt = _pitch_doubt(col, n, pitch_mm)
    if doubt:
        msgs.append(doubt)
        conf *= PITCH_DOUBT_FACTOR
        confs = [c * PITCH_DOUBT_FACTOR for c in confs]
    return Naming(labels=labels, confidence=confs, naming_confidence=float(conf), messages=msgs)


def _pitch_doubt(col: Column, n: int, pitch_mm: float) -> str:
    """A message when the discs are implausibly close for the size of the bodies, else ''.

    A vertebral body is about as tall as half its depth or more, and a disc sits between
    two bodies, so body centres lie at least ~1.5 inscribed radii apart at every level
    from C3 to L5 (measured 1.5-2.3 on phantoms and real scans).  Closer "discs" are dips
    inside the bodies (a tilted body, dark marrow), and every name counted across them is
    wrong by as many levels as there are false discs.  Discs more than
    :data:`PITCH_MAX_RATIO` radii apart mean a missed disc (measured 1.5-2.3 radii; a turned
    neck's C3/C4 disc missed: 4.4).
    """
    if col is None or len(getattr(col, "radius_mm", ())) == 0:
        return ""
    r = float(np.median(col.radius_mm))
    if r > 0 and n >= 2 and pitch_mm > PITCH_MAX_RATIO * r:
        return (f"discs found {pitch_mm:.0f} mm apart for bodies {2 * r:.0f} mm deep: a disc was probably "
                "missed, so a piece may hold two vertebrae and the level names beyond it be off by one; "
                "check them")
    if n < 3 or r <= 0 or pitch_mm >= PITCH_MIN_RATIO * r:
        return ""
    return (f"discs found only {pitch_mm:.0f} mm apart for bodies {2 * r:.0f} mm deep: some are probably "
            "not discs, so vertebrae may be split and the level names off by one or more; check them")

