"""Discriminators: base.py (the base class), registry.py (head plug-ins), heads.py + trees.py
(sklearn feature heads predicting in numpy), pair_classifier.py and unet.py (torch heads on raw
pairs), specs.py (spec files), persistence.py (save/load and the trust model)."""
