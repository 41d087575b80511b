"""Human review, in one place: who judges what, and how their judgments count.

* :mod:`~rorem_data.rounds.review.queue` - the round's review queue: the active-inference
  sample, query-strategy queues, the uniform estimation sample (``rorem_data.select``);
* :mod:`~rorem_data.rounds.review.reviewers` - who judges it: the App, a labels file, a
  function, a simulator (``rorem_data.review``);
* :mod:`~rorem_data.rounds.review.judgments` - recording, settling and withdrawing judgments
  through the decision ledger;
* :mod:`~rorem_data.rounds.review.gold` - gold items (known answers) mixed into queues;
* :mod:`~rorem_data.rounds.review.quality` - each reviewer's accuracy on gold items, agreement,
  speed, exclusion;
* :mod:`~rorem_data.rounds.review.agreement` - agreement on double-reviewed items;
* :mod:`~rorem_data.rounds.review.label_files` - judgments as CSV / JSON files and back.

The names most scripts use are importable from here.
"""

from __future__ import annotations

from rorem_data.rounds.review.agreement import reviewer_agreement  
from rorem_data.rounds.review.judgments import (  
    apply_review,
    apply_reviews,
    check_reason,
    clear_review,
    normalize_decision,
)
from rorem_data.rounds.review.label_files import (  
    export_labels,
    import_labels,
    read_labels,
)

__all__ = ["apply_review", "apply_reviews", "check_reason", "clear_review", "export_labels",
           "import_labels", "normalize_decision", "read_labels", "reviewer_agreement"]
