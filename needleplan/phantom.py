"""Synthetic spine CT phantoms with exact ground truth (sample_data/ and tests)."""
