"""A discriminator fine-tuned end to end on the raw pair: source, result and mask as 7 channels.

:class:`PairClassifier` is a torchvision ResNet (18 by default) whose first convolution takes 7
channels - source RGB, result RGB, mask - and whose last layer outputs one logit (success). It
trains a few epochs with AdamW on binary cross-entropy. With ``pretrained_weights`` (a
torchvision ResNet state-dict file, ``.pth`` or ``.safetensors``) the ImageNet filters are
copied to both RGB triplets (halved, so a pair of equal images gives the original response)
and the mask filters start at zero; without it the network starts from random weights.

Inputs (``X``), for ``fit`` and ``predict_proba``:

- a sequence of ``(source, result, mask)`` items, each part an array (source/result uint8
  ``(H, W, 3)``, mask bool ``(H, W)``) or a file path (masks are read with
  :func:`rorem_data.core.images.read_mask`); items may have different sizes;
- or an array ``(n, 7, H, W)``: channels 0-2 source, 3-5 result, 6 mask; uint8 (0..255) or float
  in [0, 1].

Every item is resized to ``image_size`` x ``image_size`` (area interpolation). Labels: 1 =
success, 0 = failure; ``predict_proba(X)[:, 1]`` = P(success).

This module imports torch lazily (inside functions); the shared pair-input helpers are also used
by :mod:`rorem_data.discriminators.unet`.
"""

from __future__ import annotations

import os
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from rorem_data.core.checks import bad
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.images import ImageProblem, read_mask, read_rgb
from rorem_data.discriminators.base import BaseDiscriminator
from rorem_data.features.pairs import check_pair_arrays, read_pair

__all__ = ["PairClassifier", "PairInputs"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _torch():
    return require("torch", purpose="this discriminator")


# --------------------------------------------------------------------------------------------
# Pair inputs shared by the torch discriminators
# --------------------------------------------------------------------------------------------


def _item_arrays(item, k: int):
    """(source, result, mask) arrays of item k from arrays or file paths."""
    if not isinstance(item, (tuple, list)) or len(item) != 3:
        raise ValidationError(f"item {k} must be (source, result, mask) (arrays or file paths); "
                              f"got {type(item).__name__}")
    if all(isinstance(part, (str, os.PathLike)) for part in item):
        return read_pair(*(os.fspath(p) for p in item), item=f"item {k}")
    parts = []
    for what, part in zip(("source", "result", "mask"), item):
        if isinstance(part, (str, os.PathLike)):
            try:
                part = read_mask(os.fspath(part)) if what == "mask" else read_rgb(os.fspath(part))
            except ImageProblem as exc:
                raise ValidationError(f"item {k}: {what} {os.fspath(part)}: {exc}") from None
        parts.append(part)
    return check_pair_arrays(*parts, item=f"item {k}")


class PairInputs:
    """Map-style dataset over pair inputs: item k -> float32 tensor (7, size, size) in [0, 1].

    Parameters
    ----------
    X : sequence of (source, result, mask) or ndarray (n, 7, H, W)
        See the module docstring.
    size : int
        Output side in pixels.
    labels : ndarray of float, optional
        If given, items are ``(tensor, label)``.

    Raises
    ------
    ValidationError
        Bad shapes/dtypes (checked per item when it is read; an array ``X`` up front).
    """

    def __init__(self, X, size: int, labels=None):
        self.size = int(size)
        self.labels = labels
        if isinstance(X, np.ndarray) or (hasattr(X, "shape") and hasattr(X, "dtype")
                                         and not isinstance(X, (list, tuple))):
            arr = np.asarray(X)
            if arr.ndim != 4 or arr.shape[1] != 7:
                raise ValidationError(
                    f"X as an array must have shape (n, 7, H, W) (source RGB, result RGB, mask); "
                    f"got {arr.shape}. Or pass a list of (source, result, mask) items.")
            if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
                raise ValidationError(f"X as an array must be uint8 (0..255) or float in [0, 1]; "
                                      f"got {arr.dtype}")
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                raise ValidationError("X contains NaN or infinite values")
            self.array = arr
            self.items = None
        else:
            try:
                self.items = list(X)
            except TypeError:
                raise ValidationError(f"X must be a sequence of (source, result, mask) items or "
                                      f"an (n, 7, H, W) array; got {type(X).__name__}") from None
            self.array = None
        if len(self) == 0:
            raise ValidationError("X is empty; pass at least one pair")
        if labels is not None and len(labels) != len(self):
            raise ValidationError(f"X has {len(self)} items but y has {len(labels)} labels; pass "
                                  "one label per item")

    def __len__(self) -> int:
        return len(self.array) if self.array is not None else len(self.items)

    def _tensor(self, k: int):
        torch = _torch()
        import torch.nn.functional as F

        if self.array is not None:
            a = self.array[k]
            x = torch.from_numpy(np.ascontiguousarray(a)).float()
            if a.dtype == np.uint8:
                x = x / 255.0
        else:
            s, r, m = _item_arrays(self.items[k], k)
            img = np.concatenate([s, r], axis=2).transpose(2, 0, 1)
            x = torch.cat([torch.from_numpy(np.ascontiguousarray(img)).float() / 255.0,
                           torch.from_numpy(m[None].astype(np.float32))])
        if tuple(x.shape[1:]) != (self.size, self.size):
            x = F.interpolate(x[None], size=(self.size, self.size), mode="area")[0]
        return x

    def __getitem__(self, k: int):
        x = self._tensor(k)
        if self.labels is None:
            return x
        return x, float(self.labels[k])


def _device(device):
    torch = _torch()
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or None; got "
                          f"{device!r} ({exc})") from None


def _seed(random_state) -> int:
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _check_number(value, name, *, kind=float, low=None, high=None, low_open=False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        rng = f" {'>' if low_open else '>='} {low}" if low is not None else ""
        raise bad(name, f"{'an integer' if kind is int else 'a number'}{rng}"
                  f"{f' and <= {high}' if high is not None else ''}", value)
    return kind(value)


def _load_state_file(path: str) -> dict:
    torch = _torch()
    if not os.path.isfile(path):
        raise ConfigError(f"pretrained_weights {path} does not exist; pass a torchvision ResNet "
                          "state-dict file (.pth or .safetensors) or None for random weights")
    if path.endswith(".safetensors"):
        try:
            return require("safetensors.torch", purpose="pretrained_weights").load_file(path)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ConfigError(f"pretrained_weights {path} is not a readable safetensors file "
                              f"({exc})") from None
    try:  # torchvision ships .pth files: torch's restricted (weights-only) unpickler, never pickle
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for bad files
        raise ConfigError(f"pretrained_weights {path} is not a loadable state dict "
                          f"({exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ConfigError(f"pretrained_weights {path} does not hold a state dict")
    return sd


_ARCHS = ("resnet18", "resnet34", "resnet50")


def build_pair_resnet(arch: str = "resnet18", pretrained_weights: str | None = None):
    """A torchvision ResNet taking 7 channels and giving one logit.

    Parameters
    ----------
    arch : {"resnet18", "resnet34", "resnet50"}
    pretrained_weights : str or None
        A torchvision state dict of the 3-channel ImageNet model of ``arch``.

    Returns
    -------
    torch.nn.Module
        ``(n, 7, H, W)`` normalised input -> ``(n, 1)`` logits.
    """
    torch = _torch()
    tvm = require("torchvision.models", purpose="PairClassifier")
    if arch not in _ARCHS:
        raise ConfigError(f"arch must be one of {list(_ARCHS)}; got {arch!r}")
    net = getattr(tvm, arch)(weights=None)
    if pretrained_weights is not None:
        sd = _load_state_file(os.fspath(pretrained_weights))
        try:
            net.load_state_dict(sd)
        except RuntimeError as exc:
            raise ConfigError(f"pretrained_weights {pretrained_weights} is not a torchvision "
                              f"{arch} state dict: {str(exc).splitlines()[0]}") from None
    old = net.conv1
    conv = torch.nn.Conv2d(7, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                           padding=old.padding, bias=False)
    with torch.no_grad():
        if pretrained_weights is not None:
            conv.weight.zero_()
            conv.weight[:, 0:3] = old.weight * 0.5
            conv.weight[:, 3:6] = old.weight * 0.5
        # else keep the default (Kaiming) init of the 7-channel conv
    net.conv1 = conv
    net.fc = torch.nn.Linear(net.fc.in_features, 1)
    return net


def _normalise(x):
    torch = _torch()
    mean = torch.tensor(_IMAGENET_MEAN * 2 + (0.5,), device=x.device).view(1, 7, 1, 1)
    std = torch.tensor(_IMAGENET_STD * 2 + (0.5,), device=x.device).view(1, 7, 1, 1)
    return (x - mean) / std


def _class_weights(y01: np.ndarray, class_weight) -> tuple[float, float]:
    if class_weight is None:
        return 1.0, 1.0
    if class_weight == "balanced":
        n = len(y01)
        n1 = int(y01.sum())
        return n / (2.0 * (n - n1)), n / (2.0 * n1)
    raise ConfigError(f"class_weight must be None or 'balanced'; got {class_weight!r}")


class PairClassifier(BaseDiscriminator):
    """ResNet fine-tuned on (source, result, mask) stacked as 7 channels; 1 logit = success.

    Parameters
    ----------
    arch : {"resnet18", "resnet34", "resnet50"}, default "resnet18"
    image_size : int, default 224
        Side every pair is resized to.
    epochs : int, default 5
    batch_size : int, default 32
    learning_rate : float, default 1e-4
        AdamW learning rate (constant).
    weight_decay : float, default 0.01
    class_weight : None or "balanced", default None
    pretrained_weights : str or None, default None
        torchvision ImageNet state dict of ``arch`` (e.g. ``resnet18-f37072fd.pth``); None =
        random init. Only read by ``fit``.
    device : str or None, default None
        None/"auto" = CUDA when available, else CPU. Not part of the model.
    num_workers : int, default 0
        DataLoader workers that decode/resize items.
    random_state : int, RandomState or None
        Seeds init, batch order and dropout; the same seed (and device) gives the same model.

    Attributes
    ----------
    classes_ : ndarray (2,)
    model_ : torch.nn.Module
        The trained network (eval mode).
    n_steps_ : int
        Optimiser steps taken.
    train_loss_ : list of float
        Mean training loss per epoch.

    Examples
    --------
    >>> from rorem_data.testing import synthetic
    >>> sc = synthetic.make_scene(0, size=32)
    >>> X = [(sc.source, synthetic.degrade(sc.source, sc.truths[0], sc.masks[0], m, seed=0),
    ...       sc.masks[0]) for m in ("clean", "residue")]
    >>> clf = PairClassifier(image_size=32, epochs=1, batch_size=2, random_state=0)
    >>> clf.fit(X, [1, 0]).predict_proba(X).shape          # doctest: +SKIP
    (2, 2)
    """

    input_kind = "pairs"
    _runtime_params = ("device", "num_workers")

    def __init__(self, arch="resnet18", image_size=224, epochs=5, batch_size=32,
                 learning_rate=1e-4, weight_decay=0.01, class_weight=None,
                 pretrained_weights=None, device=None, num_workers=0, random_state=None):
        self.arch = arch
        self.image_size = image_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.pretrained_weights = pretrained_weights
        self.device = device
        self.num_workers = num_workers
        self.random_state = random_state

    def _check_params(self):
        if self.arch not in _ARCHS:
            raise ConfigError(f"PairClassifier: arch must be one of {list(_ARCHS)}; got "
                              f"{self.arch!r}")
        _check_number(self.image_size, "PairClassifier: image_size", kind=int, low=16)
        _check_number(self.epochs, "PairClassifier: epochs", kind=int, low=1)
        _check_number(self.batch_size, "PairClassifier: batch_size", kind=int, low=1)
        _check_number(self.learning_rate, "PairClassifier: learning_rate", low=0, low_open=True)
        _check_number(self.weight_decay, "PairClassifier: weight_decay", low=0)
        _check_number(self.num_workers, "PairClassifier: num_workers", kind=int, low=0)

    def _loader(self, data, *, shuffle: bool, seed: int = 0):
        torch = _torch()
        from torch.utils.data import DataLoader

        g = torch.Generator()
        g.manual_seed(seed)
        return DataLoader(data, batch_size=int(self.batch_size), shuffle=shuffle, generator=g,
                          num_workers=int(self.num_workers))

    def fit(self, X, y):
        """Train on pairs ``X`` and labels ``y`` (1 = success, 0 = failure).

        Parameters
        ----------
        X : sequence of (source, result, mask) or ndarray (n, 7, H, W)
        y : array-like (n,)

        Returns
        -------
        self

        Raises
        ------
        ValidationError
            One class only, non-binary labels, bad items, length mismatch.
        ConfigError
            Bad parameters or an unusable ``pretrained_weights`` file.
        """
        torch = _torch()
        self._check_params()
        y01 = self._encode_labels(y)
        data = PairInputs(X, int(self.image_size), labels=y01.astype(np.float32))
        w0, w1 = _class_weights(y01, self.class_weight)
        seed = _seed(self.random_state)
        device = _device(self.device)
        losses = []
        steps = 0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            model = build_pair_resnet(self.arch, self.pretrained_weights).to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=float(self.learning_rate),
                                    weight_decay=float(self.weight_decay))
            model.train()
            for epoch in range(int(self.epochs)):
                total, count = 0.0, 0
                for xb, yb in self._loader(data, shuffle=True, seed=seed + epoch):
                    if xb.shape[0] < 2:  # batch norm needs two samples in training mode
                        continue
                    xb = _normalise(xb.to(device))
                    yb = yb.to(device=device, dtype=torch.float32)
                    logits = model(xb)[:, 0]
                    weight = torch.where(yb > 0.5, w1, w0)
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        logits, yb, weight=weight)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    steps += 1
                    total += float(loss.detach()) * xb.shape[0]
                    count += xb.shape[0]
                losses.append(total / max(count, 1))
        model.eval()
        self.model_ = model
        self.n_steps_ = steps
        self.train_loss_ = losses
        return self

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success) per pair: float64 (n, 2), rows sum to 1; column 1 higher =
        better.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValidationError
            Bad items.
        """
        torch = _torch()
        check_is_fitted(self)
        data = PairInputs(X, int(self.image_size))
        device = next(self.model_.parameters()).device
        want = _device(self.device)
        if want != device:
            self.model_.to(want)
            device = want
        out = []
        self.model_.eval()
        with torch.inference_mode():
            for xb in self._loader(data, shuffle=False):
                out.append(torch.sigmoid(self.model_(_normalise(xb.to(device)))[:, 0]).cpu())
        p1 = torch.cat(out).double().numpy()
        return np.column_stack([1.0 - p1, p1])

    def _get_state(self):
        sd = self.model_.state_dict()
        arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in sd.items()}
        return arrays, {"n_steps_": self.n_steps_, "train_loss_": list(self.train_loss_)}

    def _set_state(self, arrays, meta):
        torch = _torch()
        with torch.random.fork_rng(devices=[]):  # the throwaway init must not touch global RNG
            model = build_pair_resnet(self.arch, None)
        sd = {k[len("model."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
              if k.startswith("model.")}
        try:
            model.load_state_dict(sd)
        except RuntimeError as exc:
            raise ConfigError(f"saved PairClassifier weights do not fit arch={self.arch!r}: "
                              f"{str(exc).splitlines()[0]}") from None
        model.to(_device(self.device)).eval()
        self.model_ = model
        self.n_steps_ = int(meta["n_steps_"])
        self.train_loss_ = [float(v) for v in meta["train_loss_"]]

