"""Statistics on arrays: intervals, calibration, thresholds, agreement, PPI, image metrics (numpy/scipy)."""
