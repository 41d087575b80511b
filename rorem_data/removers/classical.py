"""The classical remover (``kind="classical"``): OpenCV's ``cv2.inpaint``, Telea or Navier-Stokes.

No model, deterministic (seeds are accepted and ignored), always at the source's native size
(the spec's ``hd_strategy`` does not apply: provenance records ``"original"``). A baseline,
and the remover of tests and the demo.

>>> from rorem_data.removers import load_remover
>>> load_remover("classical:ns").provenance()["sampler"]
'cv2.inpaint[ns]'
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rorem_data.removers.base import Remover
from rorem_data.removers.inputs import cv2_module
from rorem_data.removers.spec import RemoverSpec


class ClassicalRemover(Remover):
    """OpenCV inpainting (``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``) at the source size.

    Parameters
    ----------
    spec : RemoverSpec
        ``method`` ("telea" / "ns"), ``radius``, ``dilation``, ``paste_back`` are used.
    """

    provenance_keys = ("method", "radius")
    key_defaults: ClassVar[dict] = {"hd_strategy": "original"}

    def __init__(self, spec: RemoverSpec):
        super().__init__(spec)
        self._cv2 = cv2_module()

    def _remove_batch(self, images, masks, seeds):
        cv2 = self._cv2
        flag = cv2.INPAINT_TELEA if self.spec.method == "telea" else cv2.INPAINT_NS
        out = []
        for img, m in zip(images, masks):
            bgr = np.ascontiguousarray(img[..., ::-1])
            res = cv2.inpaint(bgr, m.astype(np.uint8) * 255, float(self.spec.radius), flag)
            out.append(np.ascontiguousarray(res[..., ::-1]))
        return out

    def _provenance(self) -> dict:
        return {
            "kind": self.spec.kind,
            "method": self.spec.method,
            "radius": self.spec.radius,
            "dilation": self.spec.dilation,
            "paste_back": self.spec.paste_back,
            "hd_strategy": "original",
            "checkpoint_sha256": None,
            "sampler": f"cv2.inpaint[{self.spec.method}]",
            "versions": {"opencv": self._cv2.__version__},
        }


__all__ = ["ClassicalRemover"]
