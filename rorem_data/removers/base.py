"""The remover interface: :class:`Remover` (get one with :func:`rorem_data.removers.load_remover`).

A remover takes a batch of (image, mask, seed) and returns one result per image at the image's
size. Subclasses implement :meth:`Remover._remove_batch` (checked inputs in, uint8 results
out) and :meth:`Remover._provenance`; the base class reads and checks the inputs, dilates the
masks, pastes the source back outside them when asked, checks the outputs, and derives the
remover's :attr:`~Remover.key` from its provenance.

>>> from rorem_data.removers import load_remover
>>> remover = load_remover("classical:telea", dilation=5)
>>> sorted(remover.provenance(seed=0))[:4]
['checkpoint_sha256', 'dilation', 'hd_strategy', 'kind']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from PIL import Image

from rorem_data.core import checks
from rorem_data.core.errors import ConfigError
from rorem_data.removers.inputs import RemoverInputError, dilate_mask, read_batch

#: Keys every remover's provenance has (``seed`` too when one is given).
PROVENANCE_KEYS = ("remover", "remover_key", "kind", "checkpoint_sha256", "sampler", "dilation",
                   "paste_back", "hd_strategy", "versions", "license")
# Provenance fields left out of ``Remover.key``: the seed, names and paths (the content of
# model / unet / lora is in ``checkpoint_sha256``), the device and library versions.
KEY_EXCLUDED = ("seed", "remover", "remover_key", "model", "unet", "lora", "device", "versions",
                "license")


class Remover:
    """Base class: removes the masked object from a batch of images.

    Subclasses set :attr:`provenance_keys` (the keys their provenance adds) and implement
    :meth:`_remove_batch` and :meth:`_provenance`; register them with
    :func:`~rorem_data.removers.kinds.register_remover`. Use :func:`load_remover` to get one.

    Parameters
    ----------
    spec : RemoverSpec
    """

    #: Keys this kind adds to :data:`PROVENANCE_KEYS`.
    provenance_keys: tuple[str, ...] = ()
    #: Provenance values left out of :attr:`key` while they hold these values: fields added
    #: after keys were first made, at the value that reproduces the earlier behaviour, so that
    #: candidates made before keep their keys.
    key_defaults: ClassVar[dict] = {}
    #: Provenance keys this kind records but leaves out of :attr:`key` (besides
    #: :data:`KEY_EXCLUDED`): settings that do not change the pixels.
    key_excluded: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec):
        self.spec = spec
        self._key = None

    # -- the contract ------------------------------------------------------------------------

    def remove(self, images: Sequence, masks: Sequence, seeds: Sequence[int] | None = None, *,
               output: str = "pil") -> list:
        """Remove the masked object from each image.

        Parameters
        ----------
        images : sequence of PIL.Image, ndarray or str
            Sources of any size and aspect: RGB(A)/grey PIL images, uint8 arrays (H, W, 3|4) or
            (H, W), or image files.
        masks : sequence of PIL.Image, ndarray or str
            Object masks, one per image and of the same size: bool / 0-1 / 0-255 arrays, PIL
            images or files (first channel, ``v / 255 >= 0.5`` is object).
        seeds : sequence of int, optional
            One seed per item; each item gets its own ``torch.Generator`` (default 0, 1, ...).
            The same seed gives the same result in any batch (up to float rounding).
        output : {"pil", "numpy"}
            Return RGB PIL images or uint8 arrays of shape (H, W, 3).

        Returns
        -------
        list
            One result per image, at the source's size. With ``spec.paste_back`` every pixel
            outside the dilated mask is the source's.

        Raises
        ------
        RemoverInputError
            One item is unusable: unreadable file, a mask whose size differs from its image,
            an empty mask, a bad dtype. ``exc.index`` is its position in the batch, so a
            caller can name the pool item and retry the batch without it.
        ConfigError
            ``output`` is not "pil" / "numpy", or the lengths of images, masks, seeds differ.
        """
        checks.choice(output, "output", ("pil", "numpy"))
        arrays, bool_masks, seeds = read_batch(images, masks, seeds)
        if not arrays:
            return []
        dilated = [dilate_mask(m, self.spec.dilation) for m in bool_masks]
        results = self._remove_batch(arrays, dilated, seeds)
        if len(results) != len(arrays):
            raise ConfigError(f"remover kind {self.spec.kind!r} returned {len(results)} results "
                              f"for {len(arrays)} images; a remover returns one per image")
        for i, (r, a) in enumerate(zip(results, arrays)):
            if not isinstance(r, np.ndarray) or r.dtype != np.uint8 or r.shape != a.shape:
                got = f"{r.dtype} {r.shape}" if isinstance(r, np.ndarray) else type(r).__name__
                raise ConfigError(f"remover kind {self.spec.kind!r} returned {got} for batch item "
                                  f"{i} ({a.shape[1]}x{a.shape[0]}); a remover returns uint8 "
                                  "(H, W, 3) at the source's size")
        if self.spec.paste_back:
            results = [np.where(m[..., None], r, a) for r, m, a in zip(results, dilated, arrays)]
        if output == "pil":
            return [Image.fromarray(r) for r in results]
        return results

    def _remove_batch(self, images: list[np.ndarray], masks: list[np.ndarray],
                      seeds: list[int]) -> list[np.ndarray]:
        """Results for checked inputs: uint8 RGB images (H, W, 3), bool dilated masks (H, W),
        int seeds; return uint8 (H, W, 3) per image, at its size."""
        raise NotImplementedError

    def _provenance(self) -> dict:
        """The kind's provenance: :data:`PROVENANCE_KEYS` (but ``remover``, ``remover_key``,
        ``license``, which the base class adds)
        plus :attr:`provenance_keys`; JSON-serialisable."""
        raise NotImplementedError

    # -- provenance and key ------------------------------------------------------------------

    def provenance(self, seed: int | None = None) -> dict:
        """What made a result: spec name, key, kind, checkpoint hash, sampler, steps, strength,
        guidance, dilation, HD strategy, resolution, dtype, the weights' ``license`` (the spec's,
        None when not given; the export's license filters read it), ... and ``seed`` when given.
        JSON-serialisable; generation stores it as is in each candidate's ``generator``."""
        prov = {"remover": self.spec.display_name, "remover_key": self.key, **self._provenance(),
                "license": getattr(self.spec, "license", None)}
        if seed is not None:
            prov["seed"] = int(seed)
        return prov

    @property
    def key(self) -> str:
        """Short stable hash of the provenance without the seed, the names and paths (the
        files' content is in ``checkpoint_sha256``), the device and library versions: two
        removers with the same key produce the same results, wherever their files live. Any
        other field that changes (steps, dilation, ``hd_strategy``, ``crop_margin``, ...)
        changes the key; fields at their :attr:`key_defaults` are left out of it."""
        if self._key is None:
            core = {k: v for k, v in self._provenance().items()
                    if k not in KEY_EXCLUDED and k not in self.key_excluded
                    and not (k in self.key_defaults and self.key_defaults[k] == v)}
            blob = json.dumps(core, sort_keys=True, default=str).encode()
            self._key = "r" + hashlib.sha256(blob).hexdigest()[:15]
        return self._key

    def close(self) -> None:
        """Free the model (and GPU memory)."""

    def __enter__(self) -> Remover:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.display_name!r}, key={self.key!r})"


__all__ = ["KEY_EXCLUDED", "PROVENANCE_KEYS", "Remover", "RemoverInputError"]
