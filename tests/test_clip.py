"""The CLIP embedder over Roboflow Inference, run offline with the committed demo model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers._offline.demo_data import write_demo_dataset
from helpers._offline.demo_model import DEMO_MODEL_FILES
from helpers._pipeline import embed_file_stream, embed_files
from helpers._scan import ImageRecord, scan
from helpers.clip import ClipEmbedder
from helpers.embedder import MAX_BATCH

HAND_LAID = """
import json
from inference.models import Clip
from PIL import Image
model = Clip(model_id="clip/demo")
text = model.embed_text(["a red circle", "a blue square"])
image = model.embed_image([Image.new("RGB", (120, 90), "red")])
print(json.dumps({"resolution": model.resolution, "text": list(text.shape), "image": list(image.shape)}))
"""


def test_committed_onnx_pair_loads_through_inference_from_a_hand_laid_cache(tmp_path: Path) -> None:
    model_dir = tmp_path / "clip" / "demo"
    model_dir.mkdir(parents=True)
    for name in ("visual.onnx", "textual.onnx"):
        shutil.copy(DEMO_MODEL_FILES / name, model_dir / name)
    env = {
        **os.environ,
        "MODEL_CACHE_DIR": str(tmp_path),
        "OFFLINE_MODE": "True",
        # Any network call would go to a closed port and fail: proves nothing is fetched.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    run = subprocess.run([sys.executable, "-c", HAND_LAID], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    shapes = json.loads(run.stdout.strip().splitlines()[-1])
    assert shapes == {"resolution": 64, "text": [2, 512], "image": [1, 512]}


def test_a_changed_demo_model_replaces_the_cached_copy(tmp_path: Path) -> None:
    from helpers._offline.demo_model import install_demo_model

    target = install_demo_model(tmp_path)
    stale = bytearray((target / "visual.onnx").read_bytes())
    stale[-1] ^= 0xFF  # same size, other content: as after retraining
    (target / "visual.onnx").write_bytes(bytes(stale))
    install_demo_model(tmp_path)
    assert (target / "visual.onnx").read_bytes() == (DEMO_MODEL_FILES / "visual.onnx").read_bytes()


def test_committed_model_is_small() -> None:
    total = sum((DEMO_MODEL_FILES / n).stat().st_size for n in ("visual.onnx", "textual.onnx"))
    assert total < 20 * 1024 * 1024


def test_vectors_are_unit_length_float32_of_the_measured_dimension(embedder: ClipEmbedder) -> None:
    texts = embedder.embed_texts(["a red circle", "a photo of a cat", "x" * 10])
    images = embedder.embed_images([Image.new("RGB", (50, 50), "blue")])
    assert embedder.dim == 512
    for vectors, rows in ((texts, 3), (images, 1)):
        assert vectors.dtype == np.float32 and vectors.shape == (rows, 512)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def watch_visual(embedder: ClipEmbedder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the visual graph runs on, appended as it runs."""
    sizes: list[int] = []
    original = embedder.run_visual
    monkeypatch.setattr(embedder, "run_visual", lambda batch: sizes.append(len(batch)) or original(batch))
    return sizes


def test_more_than_eight_images_go_in_batches_of_at_most_eight(embedder: ClipEmbedder, monkeypatch) -> None:
    sizes = watch_visual(embedder, monkeypatch)
    images = [Image.new("RGB", (32, 32), (i * 12, 0, 0)) for i in range(19)]
    vectors = embedder.embed_images(images)
    assert vectors.shape == (19, 512)
    assert sorted(sizes, reverse=True) == [MAX_BATCH, MAX_BATCH, 3]  # two workers: either may run first
    # Batching changes nothing: each image alone gives the same vector.
    assert np.allclose(vectors[10], embedder.embed_images([images[10]])[0], atol=1e-5)


def test_split_pipeline_equals_inferences_own_embed_image(embedder: ClipEmbedder, demo_set: Path) -> None:
    paths = sorted(demo_set.rglob("*.jpg"))[:5]
    ours = embedder.embed_images(paths)
    theirs = embedder.model.embed_image([Image.open(p).convert("RGB") for p in paths])
    assert np.allclose(ours, theirs / np.linalg.norm(theirs, axis=1, keepdims=True), atol=1e-6)


def test_path_and_pil_image_give_the_same_vector(embedder: ClipEmbedder, tmp_path: Path) -> None:
    image = Image.new("RGB", (80, 60), "yellow")
    image.save(tmp_path / "y.png")
    from_path, from_pil = embedder.embed_images([tmp_path / "y.png", image])
    assert np.allclose(from_path, from_pil, atol=1e-6)


def test_rerun_embeds_nothing_twice(embedder: ClipEmbedder, tmp_path: Path, monkeypatch) -> None:
    write_demo_dataset(tmp_path, count=10, seed=77)
    records = [r for r in scan(tmp_path) if isinstance(r, ImageRecord)]
    paths, hashes = [r.path for r in records], [r.sha256 for r in records]
    first = embed_files(embedder, paths, hashes)

    calls = watch_visual(embedder, monkeypatch)
    second = embed_files(embedder, paths, hashes)
    assert calls == [] and np.array_equal(first, second)


def test_the_stream_keeps_the_files_order_whatever_the_cache_holds(tmp_path: Path) -> None:
    """A warm cache must not reorder what `index_folder` stores: equal scores rank by insertion
    order, so a notebook run after another would otherwise show other hits than one run alone.
    Cached files sit among uncached ones here, and whole chunks of 64 are cached."""
    write_demo_dataset(tmp_path / "data", count=150, seed=78)
    records = sorted((r for r in scan(tmp_path / "data") if isinstance(r, ImageRecord)), key=lambda r: r.filename)
    files = [(r.path, r.sha256) for r in records]
    embedder = ClipEmbedder("demo", cache_path=tmp_path / "cache.sqlite")
    warm = [files[i] for i in (*range(3, 9), *range(20, 100), 140)]
    list(embed_file_stream(embedder, warm))
    streamed = [sha for sha, _ in embed_file_stream(embedder, files)]
    assert streamed == [sha for _, sha in files]


def test_demo_model_says_it_is_a_stand_in(tmp_path: Path, capsys) -> None:
    ClipEmbedder("demo", cache_path=None)
    assert "stand-in" in capsys.readouterr().out


def test_prompt_prefers_the_image_it_describes(embedder: ClipEmbedder, demo_set: Path) -> None:
    records = [r for r in scan(demo_set) if isinstance(r, ImageRecord)]
    with_red_circle = next(r for r in records if "red circle" in r.labels)
    without = next(r for r in records if not any("red" in label or "circle" in label for label in r.labels))
    query = embedder.embed_texts(["a red circle"])[0]
    vectors = embed_files(embedder, [with_red_circle.path, without.path], [with_red_circle.sha256, without.sha256])
    assert vectors[0] @ query > vectors[1] @ query


def test_roboflow_key_from_settings_reaches_inference(monkeypatch) -> None:
    """Inference reads the key from the environment only; one from .env or Colab is passed on."""
    import inference.models

    from helpers._settings import Secret, Settings
    from helpers.clip import embedder_for

    seen = {}
    real = inference.models.Clip
    monkeypatch.setattr(inference.models, "Clip", lambda **kw: seen.update(kw) or real(model_id=kw["model_id"]))
    embedder_for(Settings(roboflow_api_key=Secret("rf-secret"), clip_model="demo"))
    assert seen == {"model_id": "clip/demo", "api_key": "rf-secret"}


def test_a_damaged_file_costs_its_own_place_not_its_batch(embedder: ClipEmbedder, tmp_path: Path, monkeypatch) -> None:
    good = [Image.new("RGB", (40, 40), colour) for colour in ("red", "green")]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    sizes = watch_visual(embedder, monkeypatch)
    [results] = list(embedder.embed_batches([[good[0], tmp_path / "broken.jpg", good[1]]]))
    assert sizes == [2]
    assert isinstance(results[1], OSError)
    assert np.allclose(np.stack([results[0], results[2]]), embedder.embed_images(good), atol=1e-6)


def test_a_run_of_several_batches_goes_data_parallel_and_changes_no_vector(tmp_path: Path) -> None:
    fresh = ClipEmbedder("demo", cache_path=None)  # its own: the shared one may have switched already
    image = Image.new("RGB", (40, 40), "purple")
    before = fresh.embed_images([image])
    assert not fresh.data_parallel  # one batch: a query, which never pays for the reopen
    many = fresh.embed_images([Image.new("RGB", (40, 40), (i, 0, 0)) for i in range(4 * MAX_BATCH)] + [image])
    assert fresh.data_parallel and fresh.model.visual_onnx_session.get_session_options().intra_op_num_threads == 1
    assert np.allclose(many[-1], before[0], atol=1e-6)  # in order, and the same vector
    assert np.allclose(fresh.embed_images([image]), before, atol=1e-6)


def test_the_file_stream_caches_what_decoded_and_reports_what_did_not(tmp_path: Path, monkeypatch) -> None:
    write_demo_dataset(tmp_path / "set", count=10, seed=5)
    records = [r for r in scan(tmp_path / "set") if isinstance(r, ImageRecord)]
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    files = [(r.path, r.sha256) for r in records] + [(tmp_path / "broken.jpg", "f" * 64)]
    embedder = ClipEmbedder("demo", cache_path=tmp_path / "cache.sqlite")
    results = dict(embed_file_stream(embedder, iter(files)))
    assert set(results) == {sha for _, sha in files}
    assert isinstance(results["f" * 64], OSError)

    calls = []
    monkeypatch.setattr(embedder, "run_visual", lambda batch: calls.append(len(batch)))
    again = dict(embed_file_stream(embedder, iter(files)))
    assert calls == []  # nothing embedded twice; the broken file never reaches the model
    assert isinstance(again.pop("f" * 64), OSError)
    assert all(np.array_equal(again[sha], results[sha]) for sha in again)
