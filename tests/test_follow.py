"""The model follows the index: whoever reads an index queries it with the model it was built
with, unless CLIP_MODEL says otherwise, which is refused in one line when it disagrees."""

from pathlib import Path

import pytest

from embedded_es import embedded_client
from helpers._follow import model_for_index
from helpers._offline.demo_data import write_demo_dataset
from helpers._settings import Settings
from helpers._weights import ModelUnavailable
from helpers.cli import main
from helpers.clip import prepare_inference
from helpers.index import IndexMismatch, index_folder


@pytest.fixture
def demo_index(tmp_path: Path, embedder):
    es = embedded_client(tmp_path / "engine")
    index_folder(es, embedder, write_demo_dataset(tmp_path / "demo", count=8, seed=1), "images", progress=False)
    return es


def test_an_unset_clip_model_follows_the_index(demo_index) -> None:
    assert model_for_index(demo_index, "images", Settings()) == "clip/demo"
    assert model_for_index(demo_index, "no-such-index", Settings()) == "clip/ViT-B-16"  # a new index: the default


def test_an_explicit_clip_model_that_disagrees_is_refused(demo_index) -> None:
    settings = Settings(clip_model="clip/ViT-B-16", clip_model_explicit=True)
    with pytest.raises(IndexMismatch) as caught:
        model_for_index(demo_index, "images", settings)
    assert str(caught.value) == (
        "index 'images' was built with CLIP model clip/demo, but CLIP_MODEL asks for clip/ViT-B-16: "
        "unset CLIP_MODEL to use clip/demo, re-create the index (--recreate), or set another INDEX_NAME"
    )


def test_the_cli_refuses_it_in_one_line(demo_index, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EMBEDDED_ES_PATH", str(tmp_path / "engine"))
    monkeypatch.setenv("ELASTICSEARCH_URL", "")
    monkeypatch.setenv("ELASTIC_CLOUD_ID", "")
    monkeypatch.setenv("CLIP_MODEL", "ViT-B-16")
    assert main(["search", "--text", "a red circle"]) == 2
    assert capsys.readouterr().err.startswith("error: index 'images' was built with CLIP model clip/demo")


def test_a_process_that_loaded_the_demo_model_says_restart(embedder) -> None:
    """This test process loaded the demo model (the `embedder` fixture): Inference is offline
    in it for good, and a model that is not in the cache cannot be downloaded any more."""
    with pytest.raises(ModelUnavailable) as caught:
        prepare_inference("clip/never-downloaded")
    assert "restart the kernel (or run again) to download clip/never-downloaded" in str(caught.value)
