"""Train the small offline demo CLIP and export it in Roboflow Inference's format.

`python -m helpers train-demo-model --out data/demo_model` reproduces the committed model.
It learns the demo set only (coloured shapes), whole scenes and single objects cropped as
object-level search crops them (`helpers.objects`); it is a stand-in that lets the real
`inference.models.Clip` code run where CLIP weights cannot be downloaded.

- visual.onnx: float32 [N, 3, 64, 64] (CLIP-normalised, rf-clip's transform) -> [N, 512]
- textual.onnx: int32 [N, 77] CLIP BPE token ids -> [N, 512]
"""

from __future__ import annotations

import io
import itertools
import json
import random
import time
from pathlib import Path

import clip  # rf-clip: the same tokenizer and image transform that Inference uses
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from helpers._offline.demo_data import IMAGE_SIZE, PlacedShape, Scene, generate_scenes
from helpers.objects import crop_box

RESOLUTION = 64
EMBED_DIM = 512
CONTEXT_LENGTH = 77
HASH_BUCKETS = 8192
SOT, EOT = 49406, 49407
TRAINING_SEED = 1_000_003  # demo-data seeds below 1,000,000 are never seen in training
CROPS_PER_SCENE = 0.5  # one object's crop for every two scenes: what object-level search embeds


class VisualTower(nn.Module):
    """Four conv blocks, then average and max pooling: max pooling keeps each object's
    (colour, shape) feature even when several objects share the picture."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, 32, 64, 128, 128]
        for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, EMBED_DIM))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f = self.features(image)
        return self.head(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


class TextualTower(nn.Module):
    """Hashed unigram and bigram embeddings, averaged: bigrams bind "red" to "circle" so that
    "a red circle and a blue square" differs from "a blue circle and a red square"."""

    def __init__(self) -> None:
        super().__init__()
        self.unigrams = nn.Embedding(HASH_BUCKETS, 64)
        self.bigrams = nn.Embedding(HASH_BUCKETS, 64)
        self.head = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, EMBED_DIM))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        ids = tokens.long()
        valid = ((ids > 0) & (ids < SOT)).float()
        uni = self.unigrams(ids % HASH_BUCKETS) * valid.unsqueeze(-1)
        pair_ids = (ids[:, :-1] * 31 + ids[:, 1:]) % HASH_BUCKETS
        pair_valid = valid[:, :-1] * valid[:, 1:]
        bi = self.bigrams(pair_ids) * pair_valid.unsqueeze(-1)
        count = valid.sum(dim=1, keepdim=True).clamp(min=1.0)
        return self.head((uni.sum(dim=1) + bi.sum(dim=1)) / count)


def prompt_for(scene: Scene, rng: random.Random) -> tuple[str, frozenset[str]]:
    """A text for training and the set of objects it names."""
    names = [s.name for s in scene.shapes]
    one = rng.choice(names)
    choices = [
        (scene.caption, frozenset(names)),
        (" and ".join(f"a {n}" for n in names), frozenset(names)),
        (f"a {one}", frozenset([one])),
        (f"a photo of a {one}", frozenset([one])),
        (one, frozenset([one])),
    ]
    return rng.choice(choices)


def jpeg_roundtrip(image: Image.Image) -> Image.Image:
    """Train on what the demo set stores: JPEG at quality 90."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def object_crop(scene: Scene, image: Image.Image, shape: PlacedShape) -> tuple[Scene, Image.Image]:
    """One object cut out as `index_folder` cuts it (its box and margin), as a scene of its own."""
    half = shape.size / 2
    box = (round(shape.cx - half), round(shape.cy - half), round(shape.cx + half), round(shape.cy + half))
    return Scene((shape,), scene.background), image.crop(crop_box(box, IMAGE_SIZE, IMAGE_SIZE))


def build_training_set(count: int, seed: int) -> tuple[torch.Tensor, list[Scene]]:
    """`count` scenes, then `count * CROPS_PER_SCENE` crops of one of their objects each."""
    transform = clip.clip._transform(RESOLUTION)
    rng = random.Random(seed + 1)
    samples = []
    crops = []
    for i, (scene, image) in enumerate(generate_scenes(count, seed)):
        stored = jpeg_roundtrip(image)  # crops are cut from the stored JPEG, as index_folder cuts them
        samples.append((scene, stored))
        if i < count * CROPS_PER_SCENE:
            crops.append(object_crop(scene, stored, rng.choice(scene.shapes)))
    samples += crops
    return torch.stack([transform(image) for _, image in samples]), [scene for scene, _ in samples]


def soft_targets(image_sets: list[frozenset[str]], text_sets: list[frozenset[str]]) -> torch.Tensor:
    """1 where the text names only objects the image holds: shared objects are not negatives."""
    return torch.tensor([[float(t <= i) for t in text_sets] for i in image_sets])


def train(count: int, epochs: int, batch_size: int = 128, seed: int = TRAINING_SEED) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    images, scenes = build_training_set(count, seed)
    samples = len(scenes)  # scenes and crops
    visual, textual = VisualTower(), TextualTower()
    logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
    params = [*visual.parameters(), *textual.parameters(), logit_scale]
    optimiser = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    steps = epochs * ((samples + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    for epoch in range(epochs):
        order = torch.randperm(samples)
        total, started = 0.0, time.perf_counter()
        for start in range(0, samples, batch_size):
            idx = order[start : start + batch_size].tolist()
            prompts = [prompt_for(scenes[i], rng) for i in idx]
            tokens = clip.tokenize([p[0] for p in prompts]).to(torch.int32)
            image_emb = F.normalize(visual(images[idx]), dim=1)
            text_emb = F.normalize(textual(tokens), dim=1)
            logits = logit_scale.exp().clamp(max=100) * image_emb @ text_emb.T
            target = soft_targets([frozenset(s.name for s in scenes[i].shapes) for i in idx], [p[1] for p in prompts])
            loss_i = -(F.log_softmax(logits, dim=1) * target / target.sum(1, keepdim=True)).sum(1).mean()
            loss_t = -(F.log_softmax(logits.T, dim=1) * target.T / target.T.sum(1, keepdim=True)).sum(1).mean()
            loss = (loss_i + loss_t) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        seconds = time.perf_counter() - started
        print(f"epoch {epoch + 1}/{epochs}: loss {total / samples:.3f} ({seconds:.0f} s)", flush=True)
    return visual.eval(), textual.eval()


def export(visual: nn.Module, textual: nn.Module, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            visual,
            (torch.zeros(2, 3, RESOLUTION, RESOLUTION),),
            str(out / "visual.onnx"),
            input_names=["image"],
            output_names=["embedding"],
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
            dynamo=False,
        )
        torch.onnx.export(
            textual,
            (torch.zeros(2, CONTEXT_LENGTH, dtype=torch.int32),),
            str(out / "textual.onnx"),
            input_names=["text"],
            output_names=["embedding"],
            dynamic_axes={"text": {0: "batch"}, "embedding": {0: "batch"}},
            dynamo=False,
        )


def train_and_export(out: Path, count: int, epochs: int) -> None:
    started = time.perf_counter()
    visual, textual = train(count, epochs)
    export(visual, textual, out)
    recipe = {"images": count, "object_crops": int(count * CROPS_PER_SCENE), "epochs": epochs, "seed": TRAINING_SEED}
    recipe["resolution"] = RESOLUTION
    recipe["train_seconds"] = round(time.perf_counter() - started)
    (out / "training.json").write_text(json.dumps(recipe, indent=1) + "\n")
    print(f"wrote {out / 'visual.onnx'} and {out / 'textual.onnx'}")
