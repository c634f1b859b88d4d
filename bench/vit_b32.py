"""A full-size CLIP ViT-B/32 in Roboflow Inference's format, with random weights.

Inference time does not depend on weight values, so this graph times exactly like the real
ViT-B/32 where its weights cannot be downloaded. Generated once into Inference's model cache
(under data/, never committed): `python -m bench.vit_b32`.
"""

from __future__ import annotations

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


def generate(target: Path | None = None) -> Path:
    """Write visual.onnx and textual.onnx (about 600 MB together) unless they are there."""
    target = target or model_cache_dir() / MODEL_ID
    if (target / "visual.onnx").is_file() and (target / "textual.onnx").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12).eval().requires_grad_(False)  # ViT-B/32
    with torch.no_grad():
        torch.onnx.export(
            Tower(model, text=False), (torch.randn(2, 3, 224, 224),), str(target / "visual.onnx"),
            input_names=["image"], output_names=["embedding"],
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False,
        )  # fmt: skip
        torch.onnx.export(
            Tower(model, text=True), (torch.zeros(2, 77, dtype=torch.int32),),
            str(target / "textual.onnx"), input_names=["text"], output_names=["embedding"],
            dynamic_axes={"text": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False,
        )  # fmt: skip
    return target


if __name__ == "__main__":
    print(generate())
