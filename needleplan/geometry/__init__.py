"""Frames, transforms, line geometry, the C-arm model and simulated fluoroscopy (DRR).

Modules (import them directly; this package imports nothing heavy):

* :mod:`~needleplan.geometry.lines` -- point/segment distances, sampling along lines and in volumes;
* :mod:`~needleplan.geometry.carm` -- the C-arm angle convention (LAO/RAO, CRAN/CAUD);
* :mod:`~needleplan.geometry.views` -- C-arm geometry, views (poses), exact projection;
* :mod:`~needleplan.geometry.drr` -- digitally reconstructed radiographs with needles;
* :mod:`~needleplan.geometry.annotate` -- angle text and orientation letters on a DRR (Pillow);
* :mod:`~needleplan.geometry.fluoro` -- bull's-eye/progression/AP/lateral views of trajectories.
"""
