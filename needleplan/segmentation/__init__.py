"""Spine segmentation: bone, canal, vertebrae and levels, bodies, pedicles, landmarks."""
