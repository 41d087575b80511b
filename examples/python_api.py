# %% [markdown]
# # rorem-data from Python: a round in one call, then the same round step by step
#
# A notebook-style walk through the Python API (run it as a script, or cell by cell in VS Code /
# Jupyter with jupytext). It builds a small project from synthetic scenes, runs round 1 with
# `rorem_data.run_round` (a SIMULATED reviewer judges the queue), then runs round 2 step by step
# with the flat functions the driver calls, and exports the training set.
#
#     python examples/python_api.py [PROJECT_DIR]

# %%
import os
import sys
import tempfile

import rorem_data
from rorem_data.testing import synthetic
from rorem_data.testing.simulate import SimulatedReviewer

root = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rorem-example-")
os.environ.setdefault("ROREM_PROGRESS", "0")
project = rorem_data.init_project(os.path.join(root, "project"), name="example")
print(project)

# %% [markdown]
# ## Data: seed triplets (round 0) and two pools of (image, mask) items, with their licenses

# %%
meta = synthetic.write_seed_set(os.path.join(root, "data", "seeds"), 40, seed=0)
print(rorem_data.import_seeds(project, [meta], license="CC0-1.0").summary())
for r in (1, 2):
    pool = synthetic.write_pool_folder(os.path.join(root, "data", f"pool-{r}"), 80, seed=r)
    print(rorem_data.import_pool(project, pool, origin=f"pool-{r}", license="CC-BY-4.0").summary())

# %% [markdown]
# ## Round 1 in one call
#
# generate -> featurize -> active-inference sample (uniform in the first round: no discriminator
# yet) with gold items mixed in -> reviews -> train a discriminator -> score -> auto-label with a
# precision guarantee -> audit -> estimates. Every step is recorded in the round record, and
# running the same call again resumes where it stopped. In real life `reviewer="app"` opens the
# review App and waits; here a SIMULATED reviewer judges against the synthetic truth.

# %%
reviewer = SimulatedReviewer("sim", noise=0.02)
r1 = rorem_data.run_round(project, 1, remover="classical:telea", budget=60, reviewer=reviewer,
                          pool_filter={"origin": "pool-1"}, target_precision=0.8, confidence=0.8,
                          audit=0.2, progress=False)
print(r1.summary())

# %% [markdown]
# ## Round 2 step by step (what `run_round` does, with the previous discriminator)

# %%
v1 = r1.version
print(rorem_data.generate(project, 2, "classical:ns", pool_filter={"origin": "pool-2"},
                          progress=False).summary())
print(rorem_data.featurize(project, "stats", round=2, num_workers=0, progress=False).summary())
print(rorem_data.score(project, 2, v1, progress=False).summary())
# Poisson sampling with probabilities from v1's uncertainty: the same labels teach the next
# discriminator, give an unbiased success rate, and certify v1's automatic decisions
sample = rorem_data.active_sample(project, 2, 50, version=v1, floor=0.1, rng=0, previews=False)
print(sample.summary())
print(rorem_data.review(project, 2, reviewer))
t2 = rorem_data.train_discriminator(project, 2, "stats-logistic", holdout=0.4, progress=False)
print(t2.summary())
print(rorem_data.score(project, 2, t2.version, progress=False).summary())
try:
    print(rorem_data.auto_label(project, 2, version=v1, target_precision=0.8, confidence=0.8,
                                audit=0.2, previews=False).summary())
    print(rorem_data.review(project, 2, reviewer, purposes=["audit"]))
    print(rorem_data.audit(project, 2))
except rorem_data.ConfigError as exc:  # too few labels to guarantee the precision: it says so
    print("no automatic decisions:", exc)
best = rorem_data.estimates(project, 2).best
print(f"round 2 success rate {best['value']:.2f} [{best['lo']:.2f}, {best['hi']:.2f}] ({best['source']})")

# %% [markdown]
# ## The round table and the export

# %%
print(rorem_data.status(project))
print(rorem_data.export(project, 2, os.path.join(root, "export-round-2")).summary())
print("plug-ins:", rorem_data.list_strategies(), rorem_data.list_featurizers(),
      rorem_data.list_removers(), rorem_data.list_discriminators())
