"""Frames, transforms, line geometry, the C-arm model and simulated fluoroscopy (DRR)."""
