"""One synthetic vertebra: its pose, its analytic shapes and its exact landmarks.

Shapes are evaluated in the vertebra's local frame (origin at the body centre, +x patient
left, +y posterior, +z along the body's superior axis) on arrays of local coordinates, so
the same code serves any grid, spacing and rotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from needleplan._phantom.morphometry import LevelGeometry

__all__ = ["VertebraModel", "PedicleModel", "unit"]

SIDES = {"left": 1.0, "right": -1.0}
ATLAS, AXIS = 1, 2
#: The dens of C2: semi-axes (lateral, AP) and AP centre in the body frame, and how far its
#: tip rises above the body's superior surface (mm).
DENS_SEMI_MM, DENS_Y_MM, DENS_RISE_MM = (4.6, 5.0), 1.0, 16.0
#: C1: lateral-mass centre (mm from the midline) and canal centre (mm behind the dens axis).
ATLAS_LM_X_MM, ATLAS_CANAL_Y_MM = 19.0, 15.5
#: C2: centre of each superior articular facet (mm lateral, mm posterior).
AXIS_FACET_X_MM, AXIS_FACET_Y_MM = 14.5, 3.0
#: Fraction of the lamina height trimmed from its lower edge at the midline (spinous root).
LAMINA_MIDLINE_RAISE = 0.3


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _superellipse(a, b, ra, rb, n):
    """``|a/ra|^n + |b/rb|^n`` (<= 1 inside)."""
    return np.abs(a / ra) ** n + np.abs(b / rb) ** n


def _thick_segment(x, y, ax, ay, bx, by):
    """Distance in the x-y plane from points to the segment A-B, and the fraction along it."""
    dx, dy = bx - ax, by - ay
    L2 = dx * dx + dy * dy
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / L2, 0.0, 1.0)
    px = ax + t * dx
    py = ay + t * dy
    return np.sqrt((x - px) ** 2 + (y - py) ** 2), t


@dataclass
class PedicleModel:
    """A pedicle tube in local coordinates: elliptic cross-section narrowest at ``s = 0``."""

    side: str
    center: np.ndarray  # isthmus centre, local mm
    axis: np.ndarray  # unit, posterior -> anterior
    u: np.ndarray  # unit, width direction (lateral-ish)
    v: np.ndarray  # unit, height direction (superior-ish)
    width_mm: float
    height_mm: float
    s_post: float  # length behind the isthmus
    s_ant: float  # length in front of the isthmus
    flare_w: float = 0.008
    flare_h: float = 0.003
    flare_ref_mm: float | None = None  # width whose flare the tube follows (nominal)

    def contains(self, x, y, z):
        rx, ry, rz = x - self.center[0], y - self.center[1], z - self.center[2]
        s = rx * self.axis[0] + ry * self.axis[1] + rz * self.axis[2]
        a = rx * self.u[0] + ry * self.u[1] + rz * self.u[2]
        b = rx * self.v[0] + ry * self.v[1] + rz * self.v[2]
        sc = np.minimum(s * s, 100.0)
        ref = self.width_mm if self.flare_ref_mm is None else self.flare_ref_mm
        ra = 0.5 * self.width_mm + 0.5 * ref * self.flare_w * sc
        rb = 0.5 * self.height_mm * (1.0 + self.flare_h * sc)
        return ((a / ra) ** 2 + (b / rb) ** 2 <= 1.0) & (s >= -self.s_post) & (s <= self.s_ant)

    @property
    def posterior_end(self) -> np.ndarray:
        return self.center - self.s_post * self.axis


@dataclass
class VertebraModel:
    """Geometry of one vertebra: level sizes, pose in LPS and pathology."""

    geom: LevelGeometry
    center_lps: np.ndarray  # body centre
    rot: np.ndarray  # (3, 3) columns: local x, y, z in LPS
    heights_mm: tuple[float, float, float]  # anterior, middle, posterior body heights
    disc_above_mm: float
    lesion: bool = False
    wall_defect: bool = False
    narrow: dict[str, float] = field(default_factory=dict)  # side -> width mm
    disc_pad_mm: float = 0.0  # extra reach of the half-discs (wedged discs of a scoliosis)
    pedicles: dict[str, PedicleModel] = field(default_factory=dict)

    def __post_init__(self):
        # the atlas has no pedicles (its ring is drawn by :meth:`atlas`)
        self.pedicles = {} if self.geom.label == ATLAS else {side: self._make_pedicle(side) for side in SIDES}

    # ----------------------------------------------------------------- body shape
    @property
    def nominal_height_mm(self) -> float:
        return self.geom.body_height_mm

    def height_at(self, y):
        """Body height (mm) at local AP coordinate ``y`` (linear through the three heights)."""
        ha, hm, hp = self.heights_mm
        d = self.geom.body_depth_mm
        slope = (hp - ha) / (0.7 * d)
        return hm + slope * y

    def endplate_z(self, y):
        """(inferior, superior) local z of the endplates at AP coordinate ``y``."""
        h = self.height_at(y)
        return -0.5 * h, 0.5 * h

    def body(self, x, y, z):
        g = self.geom
        if g.label == ATLAS:  # no body: the anterior arch lies in front of C2's dens
            return np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=bool)
        if g.label == AXIS:
            return self._body(x, y, z) | self.dens(x, y, z)
        return self._body(x, y, z)

    def dens(self, x, y, z):
        """C2's odontoid process: an elliptic peg from the body up into C1's ring, rounded tip."""
        top = 0.5 * self.heights_mm[1] + DENS_RISE_MM
        cap = 5.0
        t = np.clip((z - (top - cap)) / cap, 0.0, 1.0)
        shrink = np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0)) + 1e-6
        a, b = DENS_SEMI_MM
        return (((x / a) ** 2 + ((y - DENS_Y_MM) / b) ** 2) <= shrink ** 2) & (z >= 0.0) & (z <= top)

    def _body(self, x, y, z):
        g = self.geom
        zi, zs = self.endplate_z(y)
        hh = 0.5 * (zs - zi)
        zc = z - 0.5 * (zs + zi)
        zn = np.clip(np.abs(zc) / np.maximum(hh, 1e-3), 0.0, 1.0)
        waist = 1.0 - 0.06 * (1.0 - zn * zn)
        q = _superellipse(x, y, 0.5 * g.body_width_mm * waist, 0.5 * g.body_depth_mm, 2.3)
        rr = np.minimum(2.0, 0.3 * hh)
        t = np.clip((np.abs(zc) - (hh - rr)) / rr, 0.0, 1.0)
        limit = 1.0 - (0.08) * (1.0 - np.sqrt(1.0 - t * t))
        return (q <= limit ** 2.3) & (np.abs(zc) <= hh)

    def canal(self, x, y, z):
        """The canal's cross-section (a rounded box behind the body), all z."""
        g = self.geom
        yc = self.canal_center_y()
        n = 2.6 if g.region == "lumbar" else 2.3
        return _superellipse(x, y - yc, 0.5 * g.canal_width_mm, 0.5 * g.canal_depth_mm, n) <= 1.0

    def canal_center_y(self) -> float:
        """Local AP coordinate of the canal's centre (C1: behind the dens, in its ring)."""
        g = self.geom
        if g.label == ATLAS:
            return ATLAS_CANAL_Y_MM
        return 0.5 * g.body_depth_mm + 0.5 * g.canal_depth_mm

    # ----------------------------------------------------------------- pedicles
    def _make_pedicle(self, side: str) -> PedicleModel:
        g = self.geom
        s = SIDES[side]
        w = float(self.narrow.get(side, g.pedicle_width_mm))
        h = float(g.pedicle_height_mm)
        al = np.deg2rad(g.medial_deg)
        be = np.deg2rad(g.sagittal_deg)
        axis = unit([-s * np.sin(al) * np.cos(be), -np.cos(al) * np.cos(be), -np.sin(be)])
        lat = np.array([s, 0.0, 0.0])
        u = unit(lat - lat.dot(axis) * axis)
        v = unit(np.cross(axis, u))
        if v[2] < 0:
            v = -v
        # the arch stays with the nominal pedicle: a narrow pedicle keeps its lateral wall
        w_nom = float(g.pedicle_width_mm)
        x_c = s * (0.5 * g.canal_width_mm + 0.5 * w_nom / np.cos(al) + 0.4
                   + 0.5 * (w_nom - w) / np.cos(al))
        hp = self.heights_mm[2]
        z_c = 0.5 * hp - 0.5 * min(h, 0.85 * hp) - 1.0 - 0.02 * hp
        y_c = 0.5 * g.body_depth_mm + g.isthmus_offset_mm
        center = np.array([x_c, y_c, z_c])
        s_ant = g.isthmus_offset_mm / (np.cos(al) * np.cos(be)) + 3.0
        return PedicleModel(side, center, axis, u, v, w, h, g.pedicle_post_mm, s_ant)

    def arch_anchor(self, side: str) -> np.ndarray:
        """Local point where pedicle, lamina, articular and transverse processes meet."""
        g = self.geom
        s = SIDES[side]
        p = self.pedicles[side]
        e = p.posterior_end.copy()
        if side in self.narrow:  # keep the arch where the nominal pedicle would put it
            e[0] = s * (abs(e[0]) + 0.5 * (g.pedicle_width_mm - p.width_mm) / np.cos(np.deg2rad(g.medial_deg)))
        return e

    # ----------------------------------------------------------------- arch
    def arch(self, x, y, z):
        """Union of laminae, spinous, transverse and articular processes (bool)."""
        g = self.geom
        if g.label == ATLAS:
            return self.atlas(x, y, z)
        hp = self.heights_mm[2]
        out = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=bool)
        ped_top = self.pedicles["left"].center[2] + 0.5 * g.pedicle_height_mm
        z_top = ped_top + 1.0
        z_bot = z_top - g.lamina_height_mm
        mid_y = 0.5 * g.body_depth_mm + g.canal_depth_mm + 0.5 * g.lamina_thick_mm
        shingle = 0.35 if g.region != "lumbar" else 0.2
        for side, s in SIDES.items():
            j = self.arch_anchor(side)
            # lamina: thick segment from the arch anchor to the midline, shingled downwards
            ax, ay = j[0] - s * 0.25 * g.pedicle_width_mm, j[1] + 0.5
            dist, t = _thick_segment(x, y, ax, ay, 0.0, mid_y)
            dz = -shingle * (y - ay)
            # shorter at the midline (spinous root), full height near the pedicle
            lam_bot = z_bot + LAMINA_MIDLINE_RAISE * g.lamina_height_mm * np.clip(2.0 * t - 1.0, 0.0, 1.0)
            out |= (dist <= 0.5 * g.lamina_thick_mm) & (z <= z_top + dz) & (z >= lam_bot + dz)
            # articular processes: superior rises above the body, inferior hangs below
            r = g.facet_radius_mm
            sx, sy = j[0] + s * 0.3 * r, j[1] + 0.4 * r
            ped_bot = self.pedicles[side].center[2] - 0.5 * g.pedicle_height_mm
            if g.region == "cervical":
                # lateral mass: both processes on one pillar, facet plane tilted ~40 deg
                ix, iy, slope = sx, sy + 0.3 * r, 0.8
                sup_top = 0.5 * hp + 0.35 * self.disc_above_mm - slope * (y - sy)
                inf_bot = -0.5 * hp - 0.35 * g.disc_below_mm - slope * (y - sy)
            else:
                phi = np.deg2rad(5.0 if g.region == "thoracic" else 50.0)
                gap = 2.0 * r * 0.85 + 1.5
                ix, iy = sx - s * np.sin(phi) * gap, sy + np.cos(phi) * gap
                sup_top = 0.5 * hp + 0.8 * self.disc_above_mm
                inf_bot = -0.5 * hp - 0.8 * g.disc_below_mm
            if g.label == AXIS:
                # C2's superior facets lie in front, beside the dens, and carry C1's lateral masses
                fx, fy = s * AXIS_FACET_X_MM, AXIS_FACET_Y_MM
                out |= (_superellipse(x - fx, y - fy, 6.0, 7.5, 2.2) <= 1.0) & \
                    (z <= 0.5 * hp + 1.5) & (z >= 0.5 * hp - 7.0)
            else:
                out |= (_superellipse(x - sx, y - sy, r, 0.85 * r, 2.0) <= 1.0) & (z <= sup_top) & \
                    (z >= ped_bot)
            if g.region != "sacral":
                out |= (_superellipse(x - ix, y - iy, 0.85 * r, r, 2.0) <= 1.0) & \
                    (z >= inf_bot) & (z <= z_bot + 0.5 * g.lamina_height_mm)
            if g.region == "sacral":
                out |= self._ala(x, y, z, side)
            else:  # transverse process
                out |= self._transverse(x, y, z, side, j)
        # spinous process
        gam = np.deg2rad(g.spinous_down_deg)
        e_y, e_z = np.cos(gam), -np.sin(gam)
        f_y, f_z = np.sin(gam), np.cos(gam)
        z0 = 0.5 * (z_top + z_bot) - shingle * (mid_y - self.pedicles["left"].posterior_end[1])
        ry, rz = y - (mid_y - 0.5 * g.lamina_thick_mm), z - z0
        along = ry * e_y + rz * e_z
        across = ry * f_y + rz * f_z
        taper = 1.0 - 0.3 * np.clip(along / g.spinous_len_mm, 0, 1)
        hgt = 0.5 * g.spinous_height_mm * (1.0 + 0.25 * np.clip(along / g.spinous_len_mm, 0, 1))
        out |= (_superellipse(x, across, 0.5 * g.spinous_thick_mm * taper, hgt, 3.0) <= 1.0) & \
               (along >= 0) & (along <= g.spinous_len_mm)
        tip = (along - g.spinous_len_mm) ** 2 / (0.5 * g.spinous_thick_mm) ** 2 + \
              x ** 2 / (0.5 * g.spinous_thick_mm * 0.7) ** 2 + across ** 2 / hgt ** 2
        out |= tip <= 1.0
        if g.label == AXIS:  # bifid spinous process: a notch between two tubercles
            out &= ~((along >= g.spinous_len_mm - 7.0) & (np.abs(x) < 1.2) & (np.abs(across) < 2.0 * hgt))
        if g.region == "sacral":  # S2 fused below S1 (no disc)
            zi = -0.5 * self.heights_mm[1]
            out |= (_superellipse(x, y + 0.03 * g.body_depth_mm, 0.4 * g.body_width_mm,
                                  0.4 * g.body_depth_mm, 2.3) <= 1.0) & (z <= zi + 1.0) & (z >= zi - 24.0)
        return out

    def atlas(self, x, y, z):
        """C1: anterior arch with its tubercle, lateral masses, posterior arch with its
        tubercle and transverse processes around the foramina (local frame: origin on C2's
        body axis, so the dens stands just behind the anterior arch)."""
        out = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=bool)
        for side, s in SIDES.items():
            d, _ = _thick_segment(x, y, s * 13.0, -5.5, 0.0, -9.5)
            out |= (d <= 3.0) & (np.abs(z) <= 5.0)  # anterior arch
            lm = _superellipse(x - s * ATLAS_LM_X_MM, y - 3.5, 7.0, 10.0, 2.2) <= 1.0
            out |= lm & (np.abs(z) <= 0.5 * self.heights_mm[1])  # lateral mass
            d, _ = _thick_segment(x, y, s * 16.0, 12.5, 0.0, 27.0)
            out |= (d <= 2.8) & (np.abs(z - 0.5) <= 4.0)  # posterior arch
            out |= self._cervical_transverse(x, y, z, side)
        out |= ((x / 5.0) ** 2 + ((y + 10.5) / 3.2) ** 2 + (z / 6.0) ** 2) <= 1.0  # anterior tubercle
        out |= ((x / 4.5) ** 2 + ((y - 29.5) / 3.5) ** 2 + (z / 5.5) ** 2) <= 1.0  # posterior tubercle
        return out

    def _ala(self, x, y, z, side):
        """Sacral ala: the wide lateral mass beside S1 (instead of a transverse process)."""
        g = self.geom
        s = SIDES[side]
        h = 0.5 * self.heights_mm[1]
        cx, cy = s * (0.5 * g.body_width_mm + 16.0), 0.1 * g.body_depth_mm
        return (_superellipse(x - cx, y - cy, 22.0, 0.45 * g.body_depth_mm + 6.0, 2.2) <= 1.0) & \
            (z <= h - 3.0) & (z >= -h - 14.0)

    def ilium(self, x, y, z, side):
        """Iliac wing beside a sacral ala (not part of the vertebra), an oblique plate."""
        g = self.geom
        s = SIDES[side]
        w2, d2 = 0.5 * g.body_width_mm, 0.5 * g.body_depth_mm
        dist, _ = _thick_segment(x, y, s * (w2 + 44.0), d2 + 22.0, s * (w2 + 80.0), -d2 - 15.0)
        return (dist <= 5.0) & (z >= -0.5 * self.heights_mm[1] - 30.0) & (z <= 0.5 * self.heights_mm[1] + 38.0)

    def _transverse(self, x, y, z, side, j):
        g = self.geom
        s = SIDES[side]
        if g.region == "cervical":
            return self._cervical_transverse(x, y, z, side)
        back = np.deg2rad(g.tp_back_deg)
        up = np.deg2rad(g.tp_up_deg)
        o = j
        d = unit([s * np.cos(back) * np.cos(up), np.sin(back) * np.cos(up), np.sin(up)])
        w = unit(np.cross(d, [0.0, 0.0, 1.0]))
        v = unit(np.cross(w, d))
        rx, ry, rz = x - o[0], y - o[1], z - o[2]
        along = rx * d[0] + ry * d[1] + rz * d[2]
        a = rx * w[0] + ry * w[1] + rz * w[2]
        b = rx * v[0] + ry * v[1] + rz * v[2]
        length = g.tp_len_mm + 0.5 * g.facet_radius_mm
        end = 0.5 * g.tp_thick_mm
        shrink = np.sqrt(np.clip(1.0 - (np.clip(along - (length - end), 0, None) / end) ** 2, 0, 1))
        return (_superellipse(a, b, 0.5 * g.tp_thick_mm * shrink + 1e-6,
                              0.5 * g.tp_height_mm * shrink + 1e-6, 2.0) <= 1.0) & \
            (along >= 0) & (along <= length)

    FORAMEN_R = 2.8

    def _lateral_dir(self, side) -> np.ndarray:
        u = self.pedicles[side].u.copy()
        u[2] = 0.0
        return unit(u)

    def _cervical_transverse(self, x, y, z, side):
        """A ring of bone (anterior and posterior roots) around the transverse foramen."""
        if self.geom.label == ATLAS:  # wide processes lateral to the lateral masses
            s = SIDES[side]
            tp = (_superellipse(x - s * 31.0, y - 3.5, 8.0, 5.5, 2.5) <= 1.0) & \
                (np.abs(z) <= 0.5 * self.geom.tp_height_mm)
            return tp & ~self.transverse_foramen(x, y, z, side)
        p = self.pedicles[side]
        c = self.foramen_center(side) + 1.2 * self._lateral_dir(side)
        r = self.FORAMEN_R + 3.2
        ring = (_superellipse(x - c[0], y - c[1], r + 1.5, r, 2.5) <= 1.0) & \
            (np.abs(z - p.center[2]) <= 0.5 * self.geom.tp_height_mm)
        return ring & ~self.transverse_foramen(x, y, z, side)

    def transverse_foramen(self, x, y, z, side):
        """Cervical foramen transversarium (vertebral artery), a vertical cylinder."""
        c = self.foramen_center(side)
        return (x - c[0]) ** 2 + (y - c[1]) ** 2 <= self.FORAMEN_R ** 2

    def foramen_center(self, side) -> np.ndarray:
        """Centre of the transverse foramen: just lateral to the pedicle's isthmus (local)."""
        if self.geom.label == ATLAS:  # lateral to the lateral mass
            return np.array([SIDES[side] * 29.5, 4.0, 0.0])
        p = self.pedicles[side]
        return p.center + (0.5 * self.geom.pedicle_width_mm + self.FORAMEN_R + 0.3) * self._lateral_dir(side)

    # ----------------------------------------------------------------- pathology
    def lesion_shape(self, x, y, z):
        """A lobulated lytic region in the left-anterior body."""
        g = self.geom
        r = 0.3 * min(g.body_width_mm, g.body_depth_mm, self.heights_mm[1])
        c1 = (0.12 * g.body_width_mm, -0.08 * g.body_depth_mm, 0.0)
        c2 = (0.02 * g.body_width_mm, 0.05 * g.body_depth_mm, 0.12 * self.heights_mm[1])
        m = (x - c1[0]) ** 2 + (y - c1[1]) ** 2 + (z - c1[2]) ** 2 <= r * r
        m |= (x - c2[0]) ** 2 + (y - c2[1]) ** 2 + (z - c2[2]) ** 2 <= (0.7 * r) ** 2
        return m

    def defect_shape(self, x, y, z):
        """A hole through the posterior cortex of the body near the midline."""
        g = self.geom
        yw = 0.5 * g.body_depth_mm
        return ((x / 5.0) ** 2 + (z / 4.5) ** 2 <= 1.0) & (y >= yw - 6.0) & (y <= yw + 1.0)

    # ----------------------------------------------------------------- frames
    def to_lps(self, p_local) -> np.ndarray:
        return self.center_lps + self.rot @ np.asarray(p_local, dtype=np.float64)

    def dir_lps(self, v_local) -> np.ndarray:
        return unit(self.rot @ np.asarray(v_local, dtype=np.float64))

    def local_extent(self):
        """(min, max) local corners of a box that holds every part of the vertebra."""
        g = self.geom
        half_x = max(0.5 * g.body_width_mm, 0.5 * g.canal_width_mm + g.pedicle_width_mm +
                     g.tp_len_mm + 12.0) + 4.0
        if g.region == "sacral":
            half_x = 0.5 * g.body_width_mm + 90.0
        y_min = -0.5 * g.body_depth_mm - 3.0
        y_max = 0.5 * g.body_depth_mm + g.canal_depth_mm + g.lamina_thick_mm + g.spinous_len_mm + 10.0
        zlo = -0.5 * max(self.heights_mm) - g.disc_below_mm - g.spinous_len_mm * \
            np.sin(np.deg2rad(g.spinous_down_deg)) - 8.0
        zhi = 0.5 * max(self.heights_mm) + self.disc_above_mm + 4.0
        if g.region == "sacral":
            zlo, zhi = zlo - 25.0, zhi + 40.0
        if g.label == ATLAS:
            half_x, y_min = 44.0, -17.0
        if g.label == AXIS:  # the dens
            zhi = 0.5 * max(self.heights_mm) + DENS_RISE_MM + 4.0
        return np.array([-half_x, y_min, zlo]), np.array([half_x, y_max, zhi])
