"""Spine segmentation: bone, canal, vertebrae and levels, bodies, pedicles, landmarks.

Entry points
------------
- :func:`segment` (CT -> :class:`Anatomy`, by the classical method, TotalSegmentator when
  installed, or from imported labels),
- :func:`anatomy_from_labels` (a VerSe label map -> canal, parts and landmarks),
- :func:`import_labels` (TotalSegmentator / VerSe label files onto the CT grid),
- :func:`rename_levels` (the user's correction of level names).

Everything leaving this package is in patient LPS millimetres.
"""

from needleplan.segmentation._anatomy import anatomy_from_labels
from needleplan.segmentation._api import BACKENDS, rename_levels, segment, totalsegmentator_available
from needleplan.segmentation._import import LABEL_FORMATS, TOTALSEG_TO_VERSE, import_labels
from needleplan.segmentation.model import (
    PART_ARCH,
    PART_BODY,
    PART_PEDICLE_LEFT,
    PART_PEDICLE_RIGHT,
    VERSE_NAMES,
    Anatomy,
    PedicleLandmarks,
    Plane,
    VertebraAnatomy,
    level_label,
    level_name,
)

__all__ = [
    "segment",
    "anatomy_from_labels",
    "import_labels",
    "rename_levels",
    "totalsegmentator_available",
    "BACKENDS",
    "LABEL_FORMATS",
    "TOTALSEG_TO_VERSE",
    "Anatomy",
    "VertebraAnatomy",
    "PedicleLandmarks",
    "Plane",
    "VERSE_NAMES",
    "PART_BODY",
    "PART_PEDICLE_LEFT",
    "PART_PEDICLE_RIGHT",
    "PART_ARCH",
    "level_name",
    "level_label",
]
