# %% [markdown]
# # rorem-data from Python: one round, step by step
#
# A notebook-style walk through the Python API (run it as a script, or cell by cell in VS Code /
# Jupyter with jupytext). It builds a small project from synthetic scenes, generates candidates
# with a classical remover, queues some for review, lets a SIMULATED reviewer judge them, trains
# and calibrates a discriminator, auto-labels with an audit, and exports the round.
#
#     python examples/python_api.py [PROJECT_DIR]

# %%
import os
import sys
import tempfile

import rorem_data
from rorem_data.testing import synthetic

root = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rorem-example-")
os.environ.setdefault("ROREM_PROGRESS", "0")
project = rorem_data.init_project(os.path.join(root, "project"), name="example")
print(project)

# %% [markdown]
# ## Data: seed triplets (round 0) and a pool of (image, mask) items

# %%
meta = synthetic.write_seed_set(os.path.join(root, "data", "seeds"), 40, seed=0)
pool = synthetic.write_pool_folder(os.path.join(root, "data", "pool"), 120, seed=1)
print(project.import_seeds(meta).summary())
print(project.import_pool(pool, origin="pool").summary())

# %% [markdown]
# ## Round 1: generate, featurize, queue for review

# %%
from rorem_data.rounds.discriminator import featurize, score, train
from rorem_data.rounds.generate import generate
from rorem_data.rounds.queue import build_estimate_sample, build_queue

print(generate(project, 1, "classical:telea", candidates=1, progress=False).summary())
features = featurize(project, "stats", round=1, num_workers=0, progress=False)
print(features.summary())
print(build_estimate_sample(project, 1, 30, rng=0, previews=False).summary())
print(build_queue(project, 1, 70, strategy="kcenter", featurizer=features.key, rng=0, previews=False).summary())

# %% [markdown]
# ## Review (SIMULATED here; in real life: `rorem-data review --round 1` opens the App)

# %%
from rorem_data.testing.simulate import SimulatedReviewer

print(SimulatedReviewer("sim", noise=0.0).review_round(project, 1))

# %% [markdown]
# ## Discriminator: train, calibrate, score; automation with an audit

# %%
from rorem_data.rounds.automation import audit_report, auto_label, round_estimates

t = train(project, 1, "stats-logistic", holdout=0.4, progress=False)
print(t.summary())
print(score(project, 1, t.version, progress=False).summary())
try:
    print(auto_label(project, 1, version=t.version, target_precision=0.8, confidence=0.8,
                     audit=0.2, previews=False).summary())
    SimulatedReviewer("sim-auditor", noise=0.0).review_round(project, 1, purposes=["audit"])
    print(audit_report(project, 1)["accept_precision"])
except rorem_data.ConfigError as exc:  # too few labels to guarantee the precision: say so
    print("no automatic decisions:", exc)
print(round_estimates(project, 1, version=t.version))

# %% [markdown]
# ## The round table and the export

# %%
for row in project.status():
    print(row)
print(project.export(1, os.path.join(root, "export-round-1")).summary())
