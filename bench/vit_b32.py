"""Full-size CLIP ViTs in Roboflow Inference's format, with random weights.

Inference time does not depend on weight values, so a random ViT-B/32 times exactly like the
real one where its weights cannot be downloaded (`python -m bench.vit_b32`, into Inference's
model cache under data/, never committed). The online rehearsal (`tests/support/roboflow_double.py`)
serves a random ViT-B/16 pair made by the same `export_pair`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from clip.model import CLIP  # rf-clip's CLIP: the architecture the real weights load into

from helpers.clip import model_cache_dir

MODEL_ID = "clip/vit-b-32-random"  # lower-case: Inference uses it as a plain folder name


class Tower(torch.nn.Module):
    """One half of CLIP as its own graph: Inference loads the two separately."""

    def __init__(self, model: CLIP, text: bool) -> None:
        super().__init__()
        self.model, self.text = model, text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(x.long()) if self.text else self.model.encode_image(x)


def export_pair(target: Path, patch_size: int) -> Path:
    """visual.onnx and textual.onnx of a random ViT-B/`patch_size` (32: about 600 MB together;
    16: visual 345 MB, textual 254 MB), unless both are there. Written into a folder beside
    `target` and renamed into place, so a run cut short never leaves half a pair behind."""
    if (target / "visual.onnx").is_file() and (target / "textual.onnx").is_file():
        return target
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    torch.manual_seed(0)
    model = CLIP(512, 224, 12, 768, patch_size, 77, 49408, 512, 8, 12).eval().requires_grad_(False)  # ViT-B
    with torch.no_grad():
        torch.onnx.export(
            Tower(model, text=False), (torch.randn(2, 3, 224, 224),), str(partial / "visual.onnx"),
            input_names=["image"], output_names=["embedding"],
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False,
        )  # fmt: skip
        torch.onnx.export(
            Tower(model, text=True), (torch.zeros(2, 77, dtype=torch.int32),),
            str(partial / "textual.onnx"), input_names=["text"], output_names=["embedding"],
            dynamic_axes={"text": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False,
        )  # fmt: skip
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def generate(target: Path | None = None) -> Path:
    """The benchmark's ViT-B/32, in Inference's model cache."""
    return export_pair(target or model_cache_dir() / MODEL_ID, patch_size=32)


if __name__ == "__main__":
    print(generate())
