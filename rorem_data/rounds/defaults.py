"""The one set of defaults of a round, shared by ``run_round``, the step functions and the CLI.

Change a default here and every entry point follows (``tests/rounds/test_plan.py`` checks that
the CLI's options and the library's keyword defaults read these names).
"""

from __future__ import annotations

#: How the review queue is drawn: a Poisson sample with known inclusion probabilities, which
#: works in round 1 (uniform, no discriminator yet), gives unbiased estimates, and certifies
#: automatic decisions (``rorem_data.rounds.review.queue.build_active_sample``).
ACTIVE = "active-inference"
STRATEGY = ACTIVE
#: Smallest inclusion probability of the active sample; None: ``UNIFORM_SHARE`` of the budget
#: spread evenly over the round's candidates (the rest by the previous version's uncertainty).
#: An even spread is what certifies automatic decisions (``benchmarks/automation_yield.py``).
FLOOR = None
UNIFORM_SHARE = 1.0
#: Discriminator spec trained each round, and the featurizer the queue and the spec use.
SPEC = "stats-logistic"
FEATURIZER = "stats"
#: Examples made from seed pairs (a success and a failure per seed): round 1's first discriminator
#: learns from them alone, before people judge; later versions train on them minus one per human
#: training label, so people take over (benchmarks/automation_yield.py: round 1 decides 28% of a
#: 600-candidate round instead of 5%).
SEED_PAIRS = 300
#: Share of human labels held out to calibrate the discriminator.
HOLDOUT = 0.3
#: Automatic accepts must reach this precision with this confidence.
TARGET_PRECISION = 0.9
CONFIDENCE = 0.9
#: How automatic decisions are certified (``rorem_data.rounds.automation``): ``"auto"`` takes
#: this round's new version cross-fitted over its active sample when it can ("crossfit"), else
#: the version that drew the sample ("active"), else this round's version on the held-out part
#: of the sample ("split"), else held-out labels ("holdout").
CALIBRATION = "auto"
#: Share of automatic decisions queued for a human audit.
AUDIT = 0.05
#: Gold items (known answers made from seed pairs) mixed into the queue, as a share of it.
GOLD_RATE = 0.05
#: Candidates per pool item, and per remover call.
CANDIDATES = 1
BATCH_SIZE = 4
#: Seed of every random draw.
RNG = 0
#: Port of the review App.
PORT = 5151
