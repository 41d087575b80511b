"""Model files and pipelines, shared by the packages that load models (removers, fine-tuning,
the UNet discriminator), which must not import each other.

- :mod:`~rorem_data.models.files`: model folders on disk, safetensors only (pickle refused);
- :mod:`~rorem_data.models.hub`: a folder or a Hugging Face hub id -> a checked local folder;
- :mod:`~rorem_data.models.devices`: ``"auto"`` device / dtype strings;
- :mod:`~rorem_data.models.hashing`: a stable sha256 of model files;
- :mod:`~rorem_data.models.families`: the diffusers inpainting families and their defaults;
- :mod:`~rorem_data.models.pipelines`: the one pipeline loader (the class ``model_index.json``
  names, or an override among the classes diffusers exports).

Importing this package imports neither torch nor diffusers; the functions that need them
import them when called.
"""
