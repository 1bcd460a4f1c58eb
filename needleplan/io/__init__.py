"""Reading and writing: CT volumes (DICOM, NIfTI, NRRD, MHA), label maps, plan files."""

from needleplan.io._atomic import atomic_path, atomic_write, prepare_out_dir
from needleplan.io._describe import describe_path
from needleplan.io._dicom_scan import ScanResult, SeriesInfo, scan_path
from needleplan.io._itk import read_label_image, write_label_image, write_volume
from needleplan.io._load import load_ct
from needleplan.io._plan_json import PLAN_SCHEMA, read_plan_json, write_plan_json
from needleplan.io._warnings import NeedlePlanWarning
from needleplan.io.volume import PHI_KEYS, Volume, apply_affine, axis_codes

__all__ = [
    "Volume",
    "apply_affine",
    "axis_codes",
    "PHI_KEYS",
    "load_ct",
    "scan_path",
    "SeriesInfo",
    "ScanResult",
    "describe_path",
    "NeedlePlanWarning",
    "write_label_image",
    "read_label_image",
    "write_volume",
    "write_plan_json",
    "read_plan_json",
    "PLAN_SCHEMA",
    "atomic_write",
    "prepare_out_dir",
    "atomic_path",
]
