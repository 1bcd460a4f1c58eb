"""Reading and writing: CT volumes (DICOM, NIfTI, NRRD, MHA), label maps, plan files."""
