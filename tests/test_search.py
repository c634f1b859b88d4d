"""Indexing and searching the demo set end to end: the real Inference embedder, the official
client, and the embedded engine."""

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest

from embedded_es import embedded_client
from helpers._fetch import ImageFetchError
from helpers.cli import main
from helpers.clip import ClipEmbedder
from helpers.index import IndexMismatch, ensure_index, index_folder
from helpers.search import DocumentNotFound, search_image, search_similar, search_text


@pytest.fixture(scope="module")
def indexed(embedder: ClipEmbedder, demo_set: Path, tmp_path_factory: pytest.TempPathFactory):
    es = embedded_client(tmp_path_factory.mktemp("engine"))
    report = index_folder(es, embedder, demo_set, "demo", progress=False)
    return es, report


def test_indexing_the_demo_set_twice_never_duplicates(indexed, embedder: ClipEmbedder, demo_set: Path) -> None:
    es, first = indexed
    assert (first.indexed, first.new, first.skipped) == (128, 128, [])
    again = index_folder(es, embedder, demo_set, "demo", progress=False)
    assert (again.indexed, again.new) == (128, 0)
    assert es.count(index="demo")["count"] == 128


def test_text_query_finds_the_described_shape(indexed, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    hits = search_text(es, embedder, "demo", "a photo of a red circle", k=5)
    assert len(hits) == 5 and all("red circle" in hit.labels for hit in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_label_filter_lets_nothing_else_through(indexed, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    hits = search_text(es, embedder, "demo", "a photo of a red circle", k=10, labels=["blue square"])
    assert hits and all("blue square" in hit.labels for hit in hits)


def test_score_floor_near_one_returns_less_than_a_page(indexed, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    assert len(search_text(es, embedder, "demo", "a photo of a red circle", k=10, min_similarity=0.99)) < 10


def test_more_like_this_excludes_the_image_itself(indexed, demo_set: Path, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    first = search_image(es, embedder, "demo", sorted(demo_set.rglob("*.jpg"))[0], k=1)[0]
    assert first.score == pytest.approx(1.0, abs=1e-5)  # the picture itself comes first
    similar = search_similar(es, "demo", first.id, k=5)
    assert len(similar) == 5 and first.id not in {hit.id for hit in similar}
    with pytest.raises(DocumentNotFound):
        search_similar(es, "demo", "0" * 64)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_image_query_by_url(indexed, demo_set: Path, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    picture = sorted(demo_set.rglob("*.jpg"))[3]
    handler = functools.partial(QuietHandler, directory=str(picture.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{picture.name}"
        assert search_image(es, embedder, "demo", url, k=1)[0].filename.endswith(picture.name)
        with pytest.raises(ImageFetchError):
            search_image(es, embedder, "demo", f"http://127.0.0.1:{server.server_port}/missing.jpg", k=1)
        with pytest.raises(ImageFetchError):
            search_image(es, embedder, "demo", "file:///etc/passwd", k=1)
    finally:
        server.shutdown()


def test_an_index_of_another_model_is_refused(indexed) -> None:
    es, _ = indexed
    with pytest.raises(IndexMismatch, match="re-create"):
        ensure_index(es, "demo", 512, "clip/ViT-B-16")
    with pytest.raises(IndexMismatch):
        ensure_index(es, "demo", 768, "clip/demo")


def test_cli_index_and_search_json(demo_set: Path, offline_cli: Path, capsys) -> None:
    assert main(["index", str(demo_set), "--index", "cli", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["indexed"], report["skipped"], report["index"]) == (128, [], "cli")

    assert main(["search", "--text", "a photo of a green triangle", "--k", "3", "--index", "cli", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(hits) == 3 and set(hits[0]) == {"id", "filename", "score", "labels"}
    assert "green triangle" in hits[0]["labels"]

    args = ["search", "--similar-to", hits[0]["id"], "--label", "green triangle", "--index", "cli", "--json"]
    assert main(args) == 0
    similar = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert similar and all("green triangle" in hit["labels"] for hit in similar)

    assert main(["search", "--similar-to", "nope", "--index", "cli"]) == 2
    assert capsys.readouterr().err.startswith("error: no image with id 'nope'")


def test_cli_index_options_choose_the_hnsw_variant(demo_set: Path, offline_cli: Path, capsys) -> None:
    from embedded_es import embedded_client

    assert main(["index", str(demo_set), "--index", "q", "--index-options", "int8_hnsw", "--json"]) == 0
    mapping = embedded_client(offline_cli).indices.get_mapping(index="q")["q"]["mappings"]
    assert mapping["properties"]["image_vector"]["index_options"]["type"] == "int8_hnsw"


def test_demo_refuses_another_models_index_until_asked_to_recreate(
    offline_cli: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from embedded_es import embedded_client
    from helpers.index import index_mapping

    monkeypatch.setenv("INDEX_NAME", "shared")
    embedded_client(offline_cli).indices.create(index="shared", mappings=index_mapping(512, "clip/ViT-B-16"))
    png = tmp_path / "grid.png"
    assert main(["demo", "--out", str(png)]) == 2
    assert "--recreate" in capsys.readouterr().err and not png.exists()
    assert main(["demo", "--out", str(png), "--recreate"]) == 0
    out = capsys.readouterr().out
    assert "128 images in index 'shared' (128 new" in out and "stand-in" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_index_reports_skipped_files_and_exits_1(offline_cli: Path, tmp_path: Path, capsys) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (30, 30), "red").save(folder / "red.png")
    (folder / "broken.jpg").write_text("not an image")
    assert main(["index", str(folder), "--index", "mixed", "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["indexed"] == 1
    assert [Path(s["path"]).name for s in report["skipped"]] == ["broken.jpg"]
