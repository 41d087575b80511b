"""The contract every registered featurizer keeps, run over ``list_featurizers()``.

One suite, like the ones for discriminators and strategies: output shape and dtype, finite and
deterministic features, a stable key, the cache round trip, real photos of several sizes and
aspect ratios (scikit-image's bundled ``astronaut``, ``coffee``, ``chelsea``, ``rocket``, each
with an object mask and an OpenCV-inpainted result) handled the same way from files as from
arrays, and bad or missing files named in the error. ``clip`` runs a tiny open_clip model built
in process (random weights) and loaded from a ``local-dir:`` folder through the code users run.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from rorem_data.core.errors import ValidationError
from rorem_data.features.base import get_featurizer, list_featurizers
from rorem_data.features.batching import featurize_paths
from rorem_data.features.cache import FeatureCache
from rorem_data.testing import synthetic

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # 512x512, 600x400, 451x300, 640x427


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny random open_clip model in a local-dir folder (config + safetensors)."""
    from rorem_data.testing.tiny import build_tiny_clip

    folder = build_tiny_clip(str(tmp_path_factory.mktemp("tiny-clip")), embed_dim=16,
                             image_size=32, layers=1, context_length=8, vocab_size=64,
                             text_width=16)
    return f"local-dir:{folder}"


def config_of(name, tiny_clip):
    """Test-sized config of each registered featurizer (the default config otherwise)."""
    return {"clip": {"model": tiny_clip}}.get(name, {})


@pytest.fixture(params=list_featurizers())
def featurizer(request, tiny_clip):
    return get_featurizer(request.param, **config_of(request.param, tiny_clip))


def synthetic_pairs(n=6, size=48, seed=0):
    rng = np.random.default_rng(seed)
    S, R, M = [], [], []
    for i in range(n):
        sc = synthetic.make_scene(rng, size=size)
        mode = ("clean", "residue", "blur", "hallucination")[i % 4]
        S.append(sc.source)
        R.append(synthetic.degrade(sc.source, sc.truths[0], sc.masks[0], mode, seed=i))
        M.append(sc.masks[0])
    return S, R, M


@pytest.fixture(scope="module")
def photos():
    """Real photos, each with an elliptical object mask and an inpainted result."""
    import cv2
    import skimage.data

    out = []
    for k, name in enumerate(PHOTOS):
        img = np.ascontiguousarray(getattr(skimage.data, name)())
        h, w = img.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (int(w * (0.35 + 0.1 * k)), int(h * 0.5)), (w // 7, h // 5), 20 * k,
                    0, 360, 255, -1)
        result = cv2.inpaint(img, mask, 5, cv2.INPAINT_TELEA)
        out.append((name, img, result, mask > 0))
    return out


def write_items(folder, S, R, M, fmt="png"):
    os.makedirs(folder, exist_ok=True)
    items = []
    for i, (s, r, m) in enumerate(zip(S, R, M)):
        p = [os.path.join(folder, f"{i:03d}_{k}.{fmt if k != 'mask' else 'png'}")
             for k in ("source", "result", "mask")]
        Image.fromarray(s).save(p[0])
        Image.fromarray(r).save(p[1])
        Image.fromarray(np.where(m, 255, 0).astype(np.uint8)).save(p[2])
        items.append(tuple(p))
    return items


# ---------------------------------------------------------------------------------------------


def test_output_shape_dtype_finite_and_deterministic(featurizer, tiny_clip):
    S, R, M = synthetic_pairs()
    X = featurizer.featurize_arrays(S, R, M, batch_size=4)
    assert type(X) is np.ndarray and X.dtype == np.float32 and X.flags.c_contiguous
    assert X.shape == (len(S), featurizer.dim) and len(featurizer.feature_names) == featurizer.dim
    assert np.isfinite(X).all()
    # the same inputs give the same features: again, with another batching, from a new instance
    np.testing.assert_array_equal(featurizer.featurize_arrays(S, R, M, batch_size=4), X)
    np.testing.assert_allclose(featurizer.featurize_arrays(S, R, M, batch_size=1), X, atol=1e-5)
    twin = get_featurizer(featurizer.name, **config_of(featurizer.name, tiny_clip))
    assert twin.key == featurizer.key and twin.config == featurizer.config
    np.testing.assert_array_equal(twin.featurize_arrays(S, R, M, batch_size=4), X)
    # features depend on the result: a different fill gives different rows
    X_same = featurizer.featurize_arrays(S, S, M)
    assert not np.allclose(X_same, X)


def test_the_cache_round_trips(featurizer, tmp_path):
    S, R, M = synthetic_pairs(7)
    items = write_items(str(tmp_path / "items"), S, R, M)
    ids = [f"cand-{i}" for i in range(len(items))]
    root = str(tmp_path / "cache")
    X = featurize_paths(featurizer, items[:4], ids=ids[:4], cache=root, num_workers=0,
                        batch_size=3, progress=False)
    cache = FeatureCache(root, featurizer.key, featurizer.key_config)
    assert cache.missing(ids) == ids[4:]
    np.testing.assert_array_equal(cache.read(ids[:4]), X)
    full = featurize_paths(featurizer, items, ids=ids, cache=root, num_workers=0, progress=False)
    np.testing.assert_array_equal(full[:4], X)  # cached rows are read back, not recomputed
    np.testing.assert_array_equal(cache.read(ids[::-1]), full[::-1])
    uncached = featurize_paths(featurizer, items, num_workers=0, progress=False)
    np.testing.assert_allclose(uncached, full, atol=1e-5)


def test_real_photos_of_any_size_and_aspect_are_handled_alike(featurizer, photos, tmp_path):
    S = [p[1] for p in photos]
    R = [p[2] for p in photos]
    M = [p[3] for p in photos]
    assert len({s.shape for s in S}) == len(S)  # four sizes, square and landscape
    X = featurizer.featurize_arrays(S, R, M)
    assert X.shape == (len(S), featurizer.dim) and np.isfinite(X).all()
    # the same from files (PNG, decoded by the core reader in DataLoader workers)
    items = write_items(str(tmp_path / "photos"), S, R, M)
    got = featurize_paths(featurizer, items, num_workers=2, batch_size=2, progress=False)
    np.testing.assert_allclose(got, X, atol=1e-5)
    # portrait versions (transposed) and RGBA sources (alpha dropped) are handled too
    St = [np.ascontiguousarray(s.transpose(1, 0, 2)) for s in S]
    Rt = [np.ascontiguousarray(r.transpose(1, 0, 2)) for r in R]
    Mt = [np.ascontiguousarray(m.T) for m in M]
    Xt = featurizer.featurize_arrays(St, Rt, Mt)
    assert Xt.shape == X.shape and np.isfinite(Xt).all()
    rgba = [np.dstack([s, np.full(s.shape[:2], 255, np.uint8)]) for s in S[:1]]
    np.testing.assert_allclose(featurizer.featurize_arrays(rgba, R[:1], M[:1]), X[:1], atol=1e-6)
    # an inpainted photo and the untouched photo give different features
    assert not np.allclose(featurizer.featurize_arrays(S[:1], S[:1], M[:1]), X[:1])


def test_bad_or_missing_files_are_named(featurizer, tmp_path):
    S, R, M = synthetic_pairs(4)
    items = write_items(str(tmp_path / "items"), S, R, M)
    os.remove(items[1][1])  # missing result
    with open(items[2][0], "r+b") as fh:  # truncated source
        fh.truncate(60)
    Image.fromarray(np.zeros(M[3].shape, np.uint8)).save(items[3][2])  # empty mask
    with pytest.raises(ValidationError) as err:
        featurize_paths(featurizer, items, batch_size=4, num_workers=0, progress=False)
    problems = "\n".join(map(str, err.value.problems))
    assert "item 1" in problems and items[1][1] in problems and "does not exist" in problems
    assert "item 2" in problems and items[2][0] in problems
    assert "item 3" in problems and "mask is empty" in problems
    assert "item 0" not in problems
    with pytest.raises(ValidationError, match="item 0 must be"):
        featurize_paths(featurizer, [("only", "two")], progress=False)
