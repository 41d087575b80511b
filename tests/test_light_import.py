import subprocess
import sys


def test_import_rorem_data_is_light():
    """`import rorem_data` must not pull in torch, diffusers, open_clip or fiftyone."""
    code = (
        "import sys, rorem_data, rorem_data.core.schema, rorem_data.core.images, rorem_data.core.validate;"
        "heavy=[m for m in ('torch','diffusers','open_clip','fiftyone','transformers','sklearn','typer')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
