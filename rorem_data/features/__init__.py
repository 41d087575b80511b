"""Features of removal candidates: pairs.py (read and check a candidate), base.py (Featurizer and
its registry), stats.py and clip.py (the built-in featurizers; clip_weights.py finds CLIP
weights), batching.py (featurize_paths over files), cache.py (the on-disk feature cache)."""
