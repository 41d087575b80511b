"""Featurizers (stats, CLIP) and the on-disk feature cache."""
