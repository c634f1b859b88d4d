"""The committed demo CLIP model: installed into Inference's model cache as `clip/demo`."""

from __future__ import annotations

import filecmp
import functools
import hashlib
import os
import shutil
from pathlib import Path

from helpers._settings import PROJECT_ROOT

DEMO_MODEL_ID = "clip/demo"
DEMO_MODEL_FILES = PROJECT_ROOT / "data" / "demo_model"
STAND_IN = "the offline demo model, a stand-in trained on synthetic shapes, not OpenAI's CLIP"
STAND_IN_NOTICE = f"NOTE: using {STAND_IN}: its results are only meaningful on the demo data set."


@functools.cache
def demo_model_version() -> str:
    """The committed weights' content hash: the embedding cache keys the demo model's vectors by
    it, so a retrained demo model never meets the vectors of the one before."""
    digest = hashlib.sha256()
    for name in ("visual.onnx", "textual.onnx"):
        digest.update((DEMO_MODEL_FILES / name).read_bytes())
    return digest.hexdigest()[:12]


def install_demo_model(cache_dir: Path) -> Path:
    """Copy the committed ONNX pair to `<cache>/clip/demo/`, where Inference opens it."""
    target = cache_dir / DEMO_MODEL_ID
    target.mkdir(parents=True, exist_ok=True)
    for name in ("visual.onnx", "textual.onnx"):
        source, dest = DEMO_MODEL_FILES / name, target / name
        # By content: a retrained model has the same architecture, hence the same file sizes.
        if not dest.is_file() or not filecmp.cmp(source, dest, shallow=False):
            # Copied beside it, then renamed: another process opening the model never sees half a file.
            partial = dest.with_name(f"{name}.{os.getpid()}.partial")
            shutil.copyfile(source, partial)
            os.replace(partial, dest)
    return target
