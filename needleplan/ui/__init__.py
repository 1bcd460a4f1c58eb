"""The PyQt6 + VTK desktop application (the only package that imports Qt or VTK)."""
