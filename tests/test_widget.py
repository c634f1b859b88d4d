"""The search widget, driven as a learner drives it: type, upload, pick a hit, read the request."""

import html
import json
from datetime import UTC, datetime
from pathlib import Path

import ipywidgets
import matplotlib
import pytest

from embedded_es import embedded_client
from helpers._settings import Settings
from helpers.clip import ClipEmbedder
from helpers.data import read_records
from helpers.index import index_folder
from helpers.widget import SearchWidget, search_widget

matplotlib.use("Agg")
INDEX = "widget"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder, demo_set: Path) -> Path:
    path = tmp_path_factory.mktemp("engine")
    index_folder(embedded_client(path), embedder, demo_set, INDEX, progress=False)
    return path


@pytest.fixture
def settings(engine: Path) -> Settings:
    return Settings(embedded_es_path=engine)


def uploaded(name: str, content: bytes) -> dict:
    """What FileUpload's value holds for one file the browser sent."""
    file = {"name": name, "type": "image/jpeg", "size": len(content), "content": memoryview(content)}
    return file | {"last_modified": datetime.now(UTC)}


def send_upload(widget: SearchWidget, name: str, content: bytes) -> None:
    """Put one file in the FileUpload as the browser does: ipywidgets 8 holds a tuple of dicts,
    ipywidgets 7 (Colab's) a read-only {name: {"metadata": ..., "content": ...}} dict."""
    if ipywidgets.__version__.startswith("7."):
        file = {"metadata": {"name": name, "size": len(content)}, "content": content}
        widget.upload.set_trait("value", {name: file})
    else:
        widget.upload.value = (uploaded(name, content),)


@pytest.fixture
def widget(settings: Settings, embedder: ClipEmbedder, demo_set: Path) -> SearchWidget:
    return search_widget(INDEX, demo_set, embedder, settings)


def test_a_typed_query_finds_pictures_with_that_label_and_shows_the_request(widget: SearchWidget) -> None:
    widget.text.value = "a photo of a red circle"
    widget.search()
    assert "5 hits" in widget.status.value and "error" not in widget.status.value
    assert all("red circle" in hit.labels for hit in widget.hits[:3])
    head, body = widget.last_request.split("\n", 1)
    request = json.loads(body)
    assert head == f"POST /{INDEX}/_search" and request["knn"]["k"] == 5 and request["size"] == 5
    assert request["knn"]["query_vector"][-1] == "... 509 more numbers"
    assert widget.similar_to.options[0][0].startswith("1. ")


def test_enter_in_the_text_or_url_box_searches(widget: SearchWidget) -> None:
    """What the front end sends when Enter is pressed in a text box (ipywidgets 7 and 8)."""
    widget.text.value = "a photo of a red circle"
    widget.text._handle_custom_msg({"event": "submit"}, [])
    assert "text: 'a photo of a red circle': 5 hits" in html.unescape(widget.status.value)
    widget.text.value, widget.url.value = "", "https://127.0.0.1:9/missing.jpg"
    widget.url._handle_custom_msg({"event": "submit"}, [])
    assert "missing.jpg" in html.unescape(widget.status.value)


def test_an_uploaded_picture_of_the_data_set_comes_back_first(widget: SearchWidget, demo_set: Path) -> None:
    record = read_records(demo_set)[9]
    send_upload(widget, "mine.jpg", record.path.read_bytes())
    widget.search()
    assert widget.hits[0].id == record.sha256 and widget.hits[0].score > 0.999


def test_more_like_this_leaves_the_chosen_hit_out(widget: SearchWidget) -> None:
    widget.text.value = "a photo of a blue square"
    widget.search()
    chosen = widget.hits[1].id
    widget.similar_to.value = chosen
    widget.more_like_this()
    assert widget.hits and chosen not in {hit.id for hit in widget.hits}
    assert json.loads(widget.last_request.split("\n", 1)[1])["knn"]["filter"]


def test_filters_and_floor_go_into_the_request(widget: SearchWidget) -> None:
    widget.text.value = "a photo of a red circle"
    widget.labels.value = ("green cross",)
    widget.k.value = 3
    widget.search()
    assert len(widget.hits) == 3 and all("green cross" in hit.labels for hit in widget.hits)
    widget.floor.value = 0.99
    widget.search()
    assert widget.hits == [] and "0 hits" in widget.status.value


@pytest.mark.parametrize(
    ("text", "url", "upload", "expected"),
    [
        ("", "", b"", "type a text, give an image URL or upload a picture"),
        ("", "picture.jpg", b"", "is not an http(s) URL"),
        ("", "", b"not a picture", "cannot identify image file"),
        ("", "http://127.0.0.1:9/x.jpg", b"", "could not fetch"),
    ],
)
def test_bad_input_is_one_line_in_the_widget(widget: SearchWidget, text, url, upload, expected) -> None:
    widget.text.value, widget.url.value = text, url
    if upload:
        send_upload(widget, "x.jpg", upload)
    widget.search()
    assert widget.status.value.startswith("<b>error:</b>") and expected in widget.status.value
    assert "\n" not in widget.status.value and not widget.go.disabled


def test_the_widget_uses_the_model_recorded_in_the_index(settings: Settings, demo_set: Path) -> None:
    widget = search_widget(INDEX, demo_set, settings=settings)  # no embedder given: the index says which model
    assert widget.embedder.model_id == "clip/demo"
