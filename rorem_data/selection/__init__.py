"""Query strategies on arrays: need scores, top-k, strata, k-center (numpy only)."""
