"""Re-indexing under another CLIP model never leaves the name without an index: a new index is
built for the model, then one `_aliases` request swaps the name over to it (issue #25)."""

from __future__ import annotations

import json
from pathlib import Path

from embedded_es import embedded_client
from helpers.cli import main
from helpers.clip import ClipEmbedder
from helpers.index import index_for_model, index_mapping, model_index_name


def test_a_model_change_builds_a_new_index_and_swaps_the_alias(
    tmp_path: Path, embedder: ClipEmbedder, demo_set: Path
) -> None:
    es = embedded_client(tmp_path / "engine")
    es.indices.create(index="images", mappings=index_mapping(embedder.dim, "other/model"))
    es.index(index="images", id="old", document={"filename": "old.jpg"}, refresh=True)
    report = index_for_model(es, embedder, demo_set, "images", progress=False)
    target = model_index_name("images", embedder.model_id)
    assert report.index == target and report.indexed == 128
    assert es.indices.get_alias(name="images") == {target: {"aliases": {"images": {}}}}
    assert es.count(index="images")["count"] == 128  # the old index went in the same request
    again = index_for_model(es, embedder, demo_set, "images", progress=False)  # same model: through the alias
    assert (again.index, again.new) == ("images", 0)


def test_cli_index_with_a_model_swaps_the_alias(
    demo_set: Path, offline_cli: Path, embedder: ClipEmbedder, capsys
) -> None:
    es = embedded_client(offline_cli)
    es.indices.create(index="swap", mappings=index_mapping(512, "clip/ViT-B-16"))
    assert main(["index", str(demo_set), "--index", "swap", "--model", "demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["index"] == model_index_name("swap", embedder.model_id)  # the demo model
    assert main(["search", "--text", "a photo of a red circle", "--index", "swap", "--k", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == 3
