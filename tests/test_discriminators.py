"""Discriminators: one contract suite over every shipped spec, sklearn's own checks on the
feature heads, the torch discriminators trained for a few steps on tiny models, and the specs.

Offline and small: feature heads on synthetic feature matrices, the pair classifier at 32 px,
the RORem UNet discriminator on a tiny SDXL-inpainting pipeline (rorem_data.testing.tiny) at 64 px,
loaded through the same from_pretrained code that loads the real checkpoint.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.discriminators.heads import HistGradientBoostingHead, LogisticHead, MLPHead
from rorem_data.discriminators.persistence import (
    load_discriminator,
    save_discriminator,
    saved_spec,
)
from rorem_data.discriminators.registry import list_heads
from rorem_data.discriminators.specs import (
    ENV_PATH,
    get_discriminator,
    get_spec,
    list_discriminators,
    read_spec_file,
    shipped_folder,
)
from rorem_data.testing import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One thread for torch and for OpenMP/BLAS (scikit-learn): the machine is shared, and
    spinning thread teams slow everything down when cores are oversubscribed."""
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory):
    """A tiny random SDXL-inpainting pipeline folder (two text encoders, 9-channel UNet)."""
    from rorem_data.testing.tiny import build_tiny_sdxl_inpaint

    return build_tiny_sdxl_inpaint(str(tmp_path_factory.mktemp("tiny-sdxl") / "pipe"), seed=0)


def feature_data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


def pair_data(n=8, size=32, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        sc = synthetic.make_scene(rng, size=size)
        mode = "clean" if i % 2 == 0 else ("residue", "hallucination", "blur")[(i // 2) % 3]
        X.append((sc.source, synthetic.degrade(sc.source, sc.truths[0], sc.masks[0], mode,
                                               seed=i), sc.masks[0]))
        y.append(int(mode == "clean"))
    return X, np.array(y)


def fast_spec(name, tiny_sdxl_dir=None):
    """The spec with test-sized parameters, and matching data."""
    spec = get_spec(name)
    cls = spec.head_class().__name__
    if cls == "MLPHead":
        over = {"hidden_layer_sizes": [8], "max_iter": 100, "early_stopping": False}
    elif cls == "HistGradientBoostingHead":
        over = {"max_iter": 15, "min_samples_leaf": 5}
    elif cls == "RandomForestHead":
        over = {"n_estimators": 20}
    elif cls == "PairClassifier":
        over = {"image_size": 32, "epochs": 1, "batch_size": 4, "learning_rate": 1e-3}
    elif cls == "UNetDiscriminator":
        over = {"pretrained_model": tiny_sdxl_dir, "resolution": 64, "max_steps": 1,
                "batch_size": 4, "learning_rate": 1e-3}
    else:
        over = {}
    spec = spec.with_params(**over)
    if spec.featurizer is not None:
        X, y = feature_data()
    else:
        X, y = pair_data(8 if cls == "PairClassifier" else 6, 32 if cls == "PairClassifier" else 64)
    return spec, X, y


# ---------------------------------------------------------------------------------------------
# the contract every registered discriminator keeps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_discriminators())
def test_discriminator_contract(name, tmp_path, request):
    tiny = request.getfixturevalue("tiny_sdxl") if get_spec(name).head == "unet" else None
    spec, X, y = fast_spec(name, tiny)
    disc = spec.build()
    # unfitted: NotFittedError
    with pytest.raises(NotFittedError):
        disc.predict_proba(X)
    # one class only: a clear error, before any heavy work
    with pytest.raises(ValidationError, match="only one class.*0 \\(failure\\) and 1"):
        clone(disc).fit(X, np.ones(len(y), int))
    # clone: an unfitted copy with equal parameters
    twin = clone(disc)
    assert twin.get_params() == disc.get_params()
    disc.fit(X, y)
    assert not hasattr(twin, "classes_")
    proba = disc.predict_proba(X)
    assert proba.shape == (len(y), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert list(disc.classes_) == [0, 1]
    assert set(disc.predict(X)) <= {0, 1}
    # same seed, same result
    np.testing.assert_array_equal(twin.fit(X, y).predict_proba(X), proba)
    # save / load round trip: identical probabilities; the spec is saved beside the weights
    folder = str(tmp_path / "saved")
    save_discriminator(disc, folder, spec=spec)
    assert sorted(os.listdir(folder)) == ["discriminator.json", "spec.json", "weights.safetensors"]
    again = load_discriminator(folder)
    assert type(again) is type(disc) and again.get_params() == disc.get_params()
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    back = saved_spec(folder)
    assert back == spec.resolved() and back.source == spec.source
    assert type(back.build()) is type(disc)
    if spec.featurizer is not None:  # every featurizer option is saved, and the key with them
        assert back.featurizer_config == spec.make_featurizer().config
        assert json.load(open(os.path.join(folder, "spec.json")))["featurizer"]["key"] == \
            spec.featurizer_key


# ---------------------------------------------------------------------------------------------
# scikit-learn's own checks on the feature heads
# ---------------------------------------------------------------------------------------------


@parametrize_with_checks([
    LogisticHead(),
    MLPHead(hidden_layer_sizes=(8,), max_iter=100),
    HistGradientBoostingHead(max_iter=15),
])
def test_feature_heads_pass_sklearn_checks(estimator, check):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_heads_match_sklearn():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = feature_data(300, 6, seed=1)
    X[::17, 2] = np.nan
    hgb = HistGradientBoostingHead(max_iter=20, random_state=0).fit(X, y)
    ref = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    # the numpy traversal sums the trees in scikit-learn's order: the same log-odds, bit for bit
    np.testing.assert_array_equal(hgb.decision_function(X), ref.decision_function(X))
    np.testing.assert_allclose(hgb.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    Xf = np.nan_to_num(X)
    mlp = MLPHead(hidden_layer_sizes=(5,), max_iter=50, random_state=0).fit(Xf, y)
    sc = StandardScaler().fit(Xf)
    ref = MLPClassifier(hidden_layer_sizes=(5,), alpha=1e-3, max_iter=50, random_state=0)
    ref.fit(sc.transform(Xf), y)
    np.testing.assert_allclose(mlp.predict_proba(Xf), ref.predict_proba(sc.transform(Xf)),
                               atol=1e-12)


def test_heads_take_no_featurizer_settings():
    """Which featurizer made X is the spec's business, saved beside the head."""
    for head in (LogisticHead(), MLPHead(), HistGradientBoostingHead()):
        assert not {"featurizer", "featurizer_config"} & set(head.get_params())
    disc = get_spec("stats-logistic").build()
    assert "featurizer" not in disc.get_params()
    X, y = feature_data()
    with pytest.raises(ValidationError, match="Only binary classification"):
        LogisticHead().fit(X, np.arange(len(y)) % 3)
    with pytest.raises(ValidationError, match="expecting 8 features"):
        LogisticHead().fit(X, y).predict_proba(X[:, :5])


# ---------------------------------------------------------------------------------------------
# torch discriminators
# ---------------------------------------------------------------------------------------------


def test_unet_discriminator_head_really_trains(tiny_sdxl):
    from rorem_data.discriminators.unet import UNetDiscriminator

    X, y = pair_data(4, 64)
    kw = dict(pretrained_model=tiny_sdxl, resolution=64, batch_size=4, learning_rate=1e-3,
              random_state=0)
    init = UNetDiscriminator(max_steps=0, **kw).fit(X, y)
    trained = UNetDiscriminator(max_steps=1, **kw).fit(X, y)
    as_released = UNetDiscriminator(max_steps=1, train_head=False, **kw).fit(X, y)
    h0, h1, h2 = init.head_state(), trained.head_state(), as_released.head_state()
    assert any(not np.array_equal(h0[k], h1[k]) for k in h0), "the head did not change"
    assert all(np.array_equal(h0[k], h2[k]) for k in h0), "train_head=False must freeze the head"
    names = trained.trainable_parameter_names()
    assert any(n.startswith("cls_pred_branch.") for n in names)
    assert any("lora_A" in n for n in names) and all(
        "lora_" in n or n.startswith("cls_pred_branch.") for n in names)
    frozen = as_released.trainable_parameter_names()
    assert not any(n.startswith("cls_pred_branch.") for n in frozen)
    assert len(trained.unet_.up_blocks) == 0 and trained.unet_.conv_out is None
    bce = UNetDiscriminator(max_steps=1, loss="bce", text_embeddings="zeros", **kw)
    p = bce.fit(X, y).predict_proba(X)
    assert p.shape == (4, 2) and np.isfinite(p).all()
    assert float(bce.prompt_embeds_.abs().sum()) == 0.0


def test_unet_discriminator_head_adapts_to_feature_map_size():
    import torch

    from rorem_data.discriminators.unet import DiscriminatorHead

    head = DiscriminatorHead(64, 32)
    for hw in (4, 16, 32):
        assert head(torch.zeros(2, 64, hw, hw)).shape == (2,)


def test_unet_discriminator_base_model_errors(tmp_path, tiny_sdxl):
    from rorem_data.discriminators.unet import UNetDiscriminator

    X, y = pair_data(2, 64)
    with pytest.raises(ConfigError, match="offline.*not in the local cache"):
        UNetDiscriminator(pretrained_model="nobody/no-such-sdxl", resolution=64).fit(X, y)
    with pytest.raises(ConfigError, match="not a diffusers pipeline"):
        UNetDiscriminator(pretrained_model=str(tmp_path), resolution=64).fit(X, y)
    with pytest.raises(ConfigError, match="loss must be"):
        UNetDiscriminator(pretrained_model=tiny_sdxl, loss="hinge").fit(X, y)
    # a base model whose UNet exists only as a pickle-based .bin is refused, never unpickled
    import shutil

    import torch
    from safetensors.torch import load_file

    pickled = str(tmp_path / "pickled-pipe")
    shutil.copytree(tiny_sdxl, pickled)
    st = [f for f in os.listdir(os.path.join(pickled, "unet")) if f.endswith(".safetensors")]
    for f in st:
        sd = load_file(os.path.join(pickled, "unet", f))
        os.remove(os.path.join(pickled, "unet", f))
        torch.save(sd, os.path.join(pickled, "unet", "diffusion_pytorch_model.bin"))
    with pytest.raises(ConfigError, match="pickle-based|cannot load the UNet/VAE"):
        UNetDiscriminator(pretrained_model=pickled, resolution=64, max_steps=0,
                          text_embeddings="zeros").fit(X, y)


def test_pair_classifier_inputs_and_pretrained_widening(tmp_path):
    import torch
    import torchvision
    from PIL import Image

    from rorem_data.discriminators.pair_classifier import PairClassifier, build_pair_resnet

    X, y = pair_data(6, 32, seed=2)
    arr = np.stack([np.concatenate([s.transpose(2, 0, 1), r.transpose(2, 0, 1),
                                    m[None].astype(np.uint8) * 255], axis=0) for s, r, m in X])
    paths = []
    for i, (s, r, m) in enumerate(X):
        p = [str(tmp_path / f"{i}_{k}.png") for k in "srm"]
        Image.fromarray(s).save(p[0])
        Image.fromarray(r).save(p[1])
        Image.fromarray(np.where(m, 255, 0).astype(np.uint8)).save(p[2])
        paths.append(tuple(p))
    clf = PairClassifier(image_size=32, epochs=1, batch_size=3, random_state=0).fit(X, y)
    p_items = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(paths), p_items, atol=1e-6)
    # uint8 mask channel 255 -> 1.0 after /255: same as the bool mask items
    np.testing.assert_allclose(clf.predict_proba(arr), p_items, atol=1e-6)
    with pytest.raises(ValidationError, match=r"\(n, 7, H, W\)"):
        clf.predict_proba(arr[:, :6])
    with pytest.raises(ValidationError, match="item 0: mask is"):
        clf.predict_proba([(X[0][0], X[0][1], X[0][2][:10])])
    # a torchvision state dict file: RGB filters copied (halved) to both images, mask at zero
    ref = torchvision.models.resnet18(weights=None)
    wfile = str(tmp_path / "resnet18.pth")
    torch.save(ref.state_dict(), wfile)
    net = build_pair_resnet("resnet18", wfile)
    w = net.conv1.weight.detach()
    torch.testing.assert_close(w[:, 0:3], ref.conv1.weight * 0.5)
    torch.testing.assert_close(w[:, 3:6], ref.conv1.weight * 0.5)
    assert float(w[:, 6].abs().sum()) == 0.0
    torch.testing.assert_close(net.layer4[0].conv1.weight, ref.layer4[0].conv1.weight)
    with pytest.raises(ConfigError, match="not a torchvision resnet18 state dict"):
        torch.save({"x": torch.zeros(1)}, str(tmp_path / "bad.pth"))
        build_pair_resnet("resnet18", str(tmp_path / "bad.pth"))


# ---------------------------------------------------------------------------------------------
# registry and specs
# ---------------------------------------------------------------------------------------------


def test_shipped_specs_are_the_files_in_the_top_level_folder():
    """One copy: the repository's discriminators/ folder is what list_discriminators() reads
    in a checkout (an installed wheel carries the same files as package data)."""
    folder = os.path.join(REPO, "discriminators")
    assert shipped_folder() == folder
    assert not os.path.exists(os.path.join(REPO, "rorem_data", "discriminators", "shipped"))
    files = sorted(f for f in os.listdir(folder) if f.endswith(".toml"))
    assert [os.path.splitext(f)[0] for f in files] == list_discriminators()
    for f in files:
        spec = read_spec_file(os.path.join(folder, f))
        assert spec.source == os.path.join(folder, f) and spec.description
        assert get_spec(spec.name) == spec
        spec.build()  # every shipped spec builds (heads and parameters are valid)


def test_registry_names_paths_classes_and_errors(tmp_path, monkeypatch):
    assert {"stats-logistic", "pair-resnet18", "rorem-unet"} <= set(list_discriminators())
    assert "logistic" in list_heads()
    with pytest.raises(ConfigError, match=r"unknown discriminator 'nope'; choose one of: clip-"):
        get_discriminator("nope")
    # a dotted class path: registered targets build; anything else needs trust_code
    assert type(get_discriminator("rorem_data.discriminators.heads:MLPHead")).__name__ == "MLPHead"
    with pytest.raises(ConfigError, match="not a registered head.*register_head.*trust_code=True"):
        get_discriminator("rorem_data.discriminators.heads:Nope")
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        get_discriminator("rorem_data.discriminators.heads:Nope", trust_code=True)
    with pytest.raises(ConfigError, match="cannot import 'no_such_pkg.mod'"):
        get_discriminator("no_such_pkg.mod:Disc", trust_code=True)
    with pytest.raises(ConfigError, match="must be a subclass of .*BaseDiscriminator"):
        get_discriminator("os:system", trust_code=True)
    # a spec file path, and an extra folder from the environment overriding a name
    spec = tmp_path / "mine.toml"
    spec.write_text('head = "logistic"\n[featurizer]\nname = "stats"\nconfig = { size = 128 }\n'
                    '[params]\nC = 0.25\n')
    d = get_discriminator(str(spec))
    assert d.C == 0.25 and get_spec(str(spec)).featurizer_config == {"size": 128}
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    assert "mine" in list_discriminators() and get_discriminator("mine").C == 0.25
    (tmp_path / "stats-logistic.json").write_text(json.dumps(
        {"head": "logistic", "featurizer": {"name": "stats"}, "params": {"C": 9.0}}))
    assert get_discriminator("stats-logistic").C == 9.0
    # bad specs
    cases = {
        "a.toml": ('head = "logistic"\n[featurizer]\nname = "sift"\n', "unknown featurizer 'sift'"),
        "b.toml": ('head = "svm"\n', "unknown head 'svm'; choose one of: cross-validated, hist-gradient"),
        "h.toml": ('head = "os:system"\n[params]\ncommand = "touch x"\n',
                   "not a registered head"),
        "i.toml": ('head = "logistic"\n[featurizer]\nname = "stats"\nkey = "stats-0000000000"\n',
                   "now gives features 'stats-.*', but the spec was made with 'stats-0000000000'"),
        "c.toml": ('head = "logistic"\n[params]\nCC = 1\n', r"unknown parameter\(s\) \['CC'\]"),
        "d.toml": ('head = "logistic"\n[featurizer]\nname = "stats"\nconfig = { sizee = 1 }\n',
                   "Unknown option"),
        "e.toml": ('head = "pair-classifier"\n[featurizer]\nname = "stats"\n', "takes raw pairs"),
        "f.toml": ('head = "logistic"\nheads = 1\n', "unknown key"),
        "g.toml": ('head = "logistic\n', "not valid TOML"),
    }
    bad = tmp_path / "bad"
    bad.mkdir()
    for fname, (text, msg) in cases.items():
        (bad / fname).write_text(text)
        with pytest.raises(ConfigError, match=msg):
            get_discriminator(str(bad / fname))
