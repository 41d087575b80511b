"""Which candidates a human should judge next: query strategies on plain numpy arrays.

``strategies`` (the registry and ``select``, the one entry point), ``builtin_strategies`` (the
strategies the library ships), ``scores`` (need scores: higher = more in need of a human),
``topk`` (the k neediest), ``kcenter`` (diversity), ``strata`` (quantile bins, stratum codes,
budget allocation), ``inputs`` (what a strategy receives), ``arrays`` (argument checks).
"""
