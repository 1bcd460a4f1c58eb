"""Plan outputs for people and other tools: PDF report, 3D Slicer markups, label exports."""
