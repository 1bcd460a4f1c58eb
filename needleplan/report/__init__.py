"""Plan outputs for people and other tools: PDF report, 3D Slicer markups, label exports."""

from needleplan.report.exports import export_label_maps, export_views, write_dicom_seg
from needleplan.report.pdf import write_report_pdf
from needleplan.report.slicer import markups_dict, write_slicer_markups

__all__ = ["write_report_pdf", "write_slicer_markups", "markups_dict", "export_label_maps", "export_views",
           "write_dicom_seg"]
