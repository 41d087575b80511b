"""The diffusers inpainting families a remover can be, and each one's defaults.

A family is known by its pipeline class (the ``_class_name`` of ``model_index.json``). Its
:class:`Family` says how the pipeline is called: which guidance it has (classifier-free
``guidance_scale``; FLUX's distilled guidance embedding, with ``true_cfg_scale`` for a
negative prompt; Qwen-Image's ``true_cfg_scale``), its default steps, guidance and strength
as the pipeline's own docs give them, the text length, and the multiple that image sides must
be (the VAE's factor times the transformer's patch size).

SD and SDXL keep RORem's values (50 steps, strength 0.99, no guidance), so the removers made
before families existed keep their keys. The transformer families take strength 1.0 (the
masked area is generated afresh; the pipelines' own defaults of 0.6-0.85 are for editing, and
keep a ghost of the object), and their docs' steps and guidance.

>>> from rorem_data.models.families import family_of
>>> family_of("FluxFillPipeline").defaults()["guidance"]
30.0
>>> family_of("StableDiffusionXLInpaintPipeline").name
'sdxl'
"""

from __future__ import annotations

from dataclasses import dataclass

#: Guidance kinds: ``cfg`` = classifier-free guidance with ``guidance_scale`` (a negative
#: prompt is used when it is > 1); ``embedded`` = a guidance value the transformer takes as
#: input (FLUX), a negative prompt needs ``true_cfg_scale`` > 1; ``true-cfg`` = only
#: ``true_cfg_scale`` (Qwen-Image); ``none`` = the pipeline has no guidance.
GUIDANCE_KINDS = ("cfg", "embedded", "true-cfg", "none")


@dataclass(frozen=True)
class Family:
    """One inpainting pipeline class and how to call it.

    Attributes
    ----------
    name : str
        Short name (``"flux-fill"``), used in docs and messages.
    pipeline : str
        The diffusers pipeline class.
    denoiser : {"unet", "transformer"}
        Where LoRA weights go.
    steps, guidance, strength : int, float, float
        Defaults (the pipeline docs' values; RORem's for SD / SDXL).
    guidance_kind : str
        One of :data:`GUIDANCE_KINDS`.
    true_cfg : float or None
        Default ``true_cfg_scale`` where the pipeline has one.
    max_sequence_length : int or None
        Default text length where the pipeline takes one.
    multiple : int
        Image sides must be multiples of this (the pipeline resizes otherwise).
    negative_prompt : bool
        Whether the pipeline takes a negative prompt.
    masked_source : bool
        Give the pipeline the source with the object grayed out (RORem's masked source), for
        pipelines that condition on the whole ``image`` (FLUX.2-klein: it would otherwise see,
        and keep, the object); the fine-tuning module trains these families the same way.
    fixed_area : bool
        The pipeline ignores ``height`` / ``width`` and works at about one megapixel
        (Qwen-Image-Edit); the result is resized back to the window.
    distilled : tuple or None
        ``(steps, guidance)`` for a guidance-distilled checkpoint (``is_distilled`` in its
        ``model_index.json``, as the released FLUX.2-klein models).
    license_hint : str
        The license of the usual base weights, for the docs (the spec's ``license`` is what
        is recorded).
    """

    name: str
    pipeline: str
    denoiser: str
    steps: int
    guidance: float
    strength: float
    guidance_kind: str = "cfg"
    true_cfg: float | None = None
    max_sequence_length: int | None = None
    multiple: int = 8
    negative_prompt: bool = True
    masked_source: bool = False
    fixed_area: bool = False
    distilled: tuple | None = None
    license_hint: str = ""

    def defaults(self, index: dict | None = None) -> dict:
        """The spec values this family fills in when a spec leaves them unset; ``index`` (a
        ``model_index.json``) picks the distilled values where it says ``is_distilled``."""
        steps, guidance = self.steps, self.guidance
        if self.distilled and isinstance(index, dict) and index.get("is_distilled") is True:
            steps, guidance = self.distilled
        return {"steps": steps, "guidance": guidance, "strength": self.strength,
                "true_cfg": self.true_cfg, "max_sequence_length": self.max_sequence_length}


_FAMILIES = (
    Family("sd", "StableDiffusionInpaintPipeline", "unet", 50, 1.0, 0.99,
           license_hint="CreativeML OpenRAIL-M"),
    Family("sdxl", "StableDiffusionXLInpaintPipeline", "unet", 50, 1.0, 0.99,
           license_hint="CreativeML OpenRAIL++-M"),
    Family("sd3", "StableDiffusion3InpaintPipeline", "transformer", 28, 7.0, 1.0,
           max_sequence_length=256, multiple=16,
           license_hint="Stability AI Community License"),
    Family("flux-inpaint", "FluxInpaintPipeline", "transformer", 28, 3.5, 1.0,
           guidance_kind="embedded", true_cfg=1.0, max_sequence_length=512, multiple=16,
           license_hint="FLUX.1 [dev] Non-Commercial License (schnell: Apache-2.0)"),
    Family("flux-fill", "FluxFillPipeline", "transformer", 50, 30.0, 1.0,
           guidance_kind="embedded", max_sequence_length=512, multiple=16,
           negative_prompt=False, license_hint="FLUX.1 [dev] Non-Commercial License"),
    Family("flux-kontext-inpaint", "FluxKontextInpaintPipeline", "transformer", 28, 3.5, 1.0,
           guidance_kind="embedded", true_cfg=1.0, max_sequence_length=512, multiple=16,
           license_hint="FLUX.1 [dev] Non-Commercial License"),
    Family("flux2-klein-inpaint", "Flux2KleinInpaintPipeline", "transformer", 50, 8.0, 1.0,
           max_sequence_length=512, multiple=16, negative_prompt=False, masked_source=True,
           distilled=(4, 1.0), license_hint="Apache-2.0 (FLUX.2 [klein] 4B)"),
    Family("qwen-image-inpaint", "QwenImageInpaintPipeline", "transformer", 50, 1.0, 1.0,
           guidance_kind="true-cfg", true_cfg=4.0, max_sequence_length=512, multiple=16,
           license_hint="Apache-2.0"),
    Family("qwen-image-edit-inpaint", "QwenImageEditInpaintPipeline", "transformer", 50, 1.0,
           1.0, guidance_kind="true-cfg", true_cfg=4.0, max_sequence_length=512, multiple=16,
           fixed_area=True, license_hint="Apache-2.0"),
    Family("z-image-inpaint", "ZImageInpaintPipeline", "transformer", 8, 0.0, 1.0,
           max_sequence_length=512, multiple=16, license_hint="Apache-2.0"),
)
FAMILIES: dict[str, Family] = {f.pipeline: f for f in _FAMILIES}


def family_of(pipeline: str) -> Family | None:
    """The :class:`Family` of a pipeline class name, or ``None`` for one outside the table
    (such a pipeline still loads when diffusers exports it; it runs with the spec's values and
    the SD defaults)."""
    return FAMILIES.get(pipeline)


def list_families() -> list[Family]:
    """Every known family, in the order of the docs."""
    return list(_FAMILIES)


__all__ = ["FAMILIES", "Family", "GUIDANCE_KINDS", "family_of", "list_families"]
