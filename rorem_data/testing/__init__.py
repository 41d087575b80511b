"""Helpers that tests, the demo and users share: synthetic scenes, tiny models, simulated reviewers."""
