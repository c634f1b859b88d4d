"""Search the index without writing code: a search box, a picture (upload or URL), k, a score
floor and the index's filters; whole pictures or their objects (the matching box drawn); the
hits as the notebooks' supervision grid; "more like this" on any hit; and the exact
Elasticsearch request each search sent, so the widget teaches too.

Core ipywidgets only, so it runs in JupyterLab, Notebook 7, VS Code and Colab. The vectors come
from the model recorded in the index (`_meta.model`), whatever the notebook loaded.
"""

from __future__ import annotations

import html
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as day_start
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import supervision as sv
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from PIL import Image, UnidentifiedImageError

from helpers._fetch import ImageFetchError, is_url
from helpers._settings import Settings, load_settings
from helpers.clip import embedder_for
from helpers.connect import connect, explain
from helpers.data import detections
from helpers.embedder import Embedder
from helpers.index import existing_model, no_model_recorded
from helpers.search import DocumentNotFound, Hit, hits_of, knn_request, mix, send, stored_vector
from helpers.show import plot_hits

SHOWN_NUMBERS = 3  # of a query vector, in the request view
FAILURES = (ValueError, OSError, ApiError, TransportError, ImageFetchError, DocumentNotFound, UnidentifiedImageError)


def shown_request(index: str, body: dict) -> str:
    """The request as Kibana's console writes it, the vector shortened to its first numbers."""
    knn = body["knn"]
    vector = knn["query_vector"]
    shortened = [*vector[:SHOWN_NUMBERS], f"... {len(vector) - SHOWN_NUMBERS} more numbers"]
    return f"POST /{index}/_search\n" + json.dumps(body | {"knn": knn | {"query_vector": shortened}}, indent=2)


def uploaded_file(upload: widgets.FileUpload) -> tuple[str, bytes] | None:
    """The last uploaded file's name and content, or None. ipywidgets 8 holds a tuple of dicts;
    ipywidgets 7 (Colab's) a read-only {name: {"metadata": ..., "content": ...}} dict."""
    value = upload.value
    if not value:
        return None
    if isinstance(value, dict):
        name, file = list(value.items())[-1]
        return name, bytes(file["content"])
    return value[-1]["name"], bytes(value[-1]["content"])


def uploaded_picture(upload: widgets.FileUpload) -> Image.Image | None:
    """The uploaded file as a picture, or None when nothing was uploaded."""
    file = uploaded_file(upload)
    return None if file is None else Image.open(io.BytesIO(file[1]))


def forget_upload(upload: widgets.FileUpload) -> None:
    """Empty the upload (ipywidgets 7 makes its value read-only, hence `set_trait`)."""
    upload.set_trait("value", {} if isinstance(upload.value, dict) else ())


def since_filter(day: date | None) -> str | None:
    return datetime.combine(day, day_start(), tzinfo=UTC).isoformat() if day else None


def on_enter(box: widgets.Text, action: Callable[[], None]) -> None:
    """Run `action` when Enter is pressed in `box`. The front end (ipywidgets 7, Colab's, and 8)
    sends a "submit" message on Enter; ipywidgets 8 deprecates `on_submit`, its wrapper, so the
    message is read directly."""
    box.on_msg(lambda _box, content, _buffers: action() if content.get("event") == "submit" else None)


class SearchWidget:
    """The widget's controls and what they do. Display it (it is the last value of a cell) or
    drive it from code: set the controls, then call `search()` or `more_like_this()`."""

    def __init__(self, es: Elasticsearch, index: str, data_dir: Path, embedder: Embedder, boxes: sv.DetectionDataset):
        self.es, self.index, self.data_dir, self.embedder, self.boxes = es, index, Path(data_dir), embedder, boxes
        self.hits: list[Hit] = []
        self.last_request = ""
        style = {"description_width": "90px"}
        self.text = widgets.Text(description="Text", placeholder="a photo of ...", style=style)
        self.url = widgets.Text(description="Image URL", placeholder="https://...", style=style)
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.k = widgets.IntSlider(value=5, min=1, max=20, description="Hits (k)", style=style)
        self.floor = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, description="Min cosine", style=style)
        labels = sorted(boxes.classes)  # the data set's classes: the values of the index's `labels`
        self.labels = widgets.SelectMultiple(options=labels, rows=min(6, max(len(labels), 1)), description="Labels")
        self.since = widgets.DatePicker(description="Uploaded since", style=style)
        self.level = widgets.ToggleButtons(
            options=[("Pictures", False), ("Objects", True)],
            description="Search",
            tooltips=["rank whole pictures", "rank pictures by their best labelled object; draw its box"],
            style=style,
        )
        self.go = widgets.Button(description="Search", button_style="primary", icon="search")
        self.similar_to = widgets.Dropdown(description="Hit", options=[], style=style)
        self.similar = widgets.Button(description="More like this", icon="images")
        self.status = widgets.HTML()
        self.grid = widgets.Output()
        self.request = widgets.HTML()
        request_view = widgets.Accordion(children=[self.request], titles=("The Elasticsearch request",))
        self.go.on_click(lambda _: self.search())
        for box in (self.text, self.url):  # Enter searches, as in every search box
            on_enter(box, self.search)
        self.similar.on_click(lambda _: self.more_like_this())
        query = widgets.VBox([self.text, self.url, self.upload])
        options = widgets.VBox([self.level, self.k, self.floor, self.since, self.labels])
        self.view = widgets.VBox(
            [
                widgets.HBox([query, options]),
                widgets.HBox([self.go, self.similar_to, self.similar]),
                self.status,
                self.grid,
                request_view,
            ]
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.view)

    def options(self) -> dict:
        return {
            "k": self.k.value,
            "labels": list(self.labels.value),
            "min_similarity": self.floor.value or None,
            "since": since_filter(self.since.value),
            "objects": self.level.value,
        }

    def query_vector(self) -> tuple[np.ndarray, str]:
        """The query's vector and a title: text, a picture (upload first, else URL), or both."""
        text = self.text.value.strip()
        picture = uploaded_picture(self.upload) or (self.url.value.strip() or None)
        if isinstance(picture, str) and not is_url(picture):
            raise ValueError(f"{picture!r} is not an http(s) URL")
        if picture is None and not text:
            raise ValueError("type a text, give an image URL or upload a picture")
        parts, titles = [], []
        if text:
            parts.append((self.embedder.embed_texts([text])[0], 0.5))
            titles.append(f"text: {text!r}")
        if picture is not None:
            parts.append((self.embedder.embed_images([picture])[0], 0.5))
            titles.append("picture: " + (picture if isinstance(picture, str) else uploaded_file(self.upload)[0]))
        return (mix(parts) if len(parts) > 1 else parts[0][0]), " + ".join(titles)

    def search(self) -> None:
        """Search with the text and/or picture given; an uploaded picture is used once."""
        self._run(lambda: (*self.query_vector(), []))
        forget_upload(self.upload)

    def more_like_this(self) -> None:
        def similar() -> tuple[np.ndarray, str, list[str]]:
            if not self.similar_to.value:
                raise ValueError("search first, then choose a hit")
            vector, doc_id = stored_vector(self.es, self.index, self.similar_to.value)
            return vector, f"more like {self.similar_to.label}", [doc_id]

        self._run(similar)

    def _run(self, make_query: Callable[[], tuple[np.ndarray, str, list[str]]]) -> None:
        """Embed, search, draw; any failure is one line in the status, never a traceback."""
        self.go.disabled = self.similar.disabled = True
        self.status.value = "<i>searching…</i>"
        started = time.perf_counter()
        try:
            vector, title, excluded = make_query()
            body = knn_request(vector, **self.options(), exclude_ids=excluded or None)
            self.hits = hits_of(send(self.es, self.index, body))
            self.last_request = shown_request(self.index, body)
            self.request.value = f"<pre>{html.escape(self.last_request)}</pre>"
            self._draw(title)
            took = (time.perf_counter() - started) * 1000
            best = f"; best: {self.hits[0].filename} [{', '.join(self.hits[0].labels)}]" if self.hits else ""
            matched = f", matched {self.hits[0].object_label}" if self.hits and self.hits[0].box else ""
            self.status.value = html.escape(f"{title}: {len(self.hits)} hits in {took:.0f} ms{best}{matched}")
        except FAILURES as error:
            message = explain(error, load_settings()) if isinstance(error, ApiError | TransportError) else None
            self.status.value = f"<b>error:</b> {html.escape(message or str(error).splitlines()[0])}"
        finally:
            self.go.disabled = self.similar.disabled = False

    def _draw(self, title: str) -> None:
        self.similar_to.options = [(f"{i}. {Path(h.filename).name}", h.id) for i, h in enumerate(self.hits, 1)]
        with self.grid:
            self.grid.clear_output(wait=True)
            if self.hits:
                plot_hits({title: self.hits}, self.data_dir, columns=min(5, len(self.hits)), boxes=self.boxes)
            else:
                print("no hits: nothing passed the filters or scored above the floor (nothing relevant)")


def search_widget(
    index: str, data_dir: Path, embedder: Embedder | None = None, settings: Settings | None = None
) -> SearchWidget:
    """A search widget over `index`, whose pictures are in `data_dir`. It opens its own client
    (`connect`), so it keeps working after the notebook closes its own. Its vectors come from
    the model recorded in the index: `embedder` is used if it is that model, else that model is
    loaded."""
    settings = settings or load_settings()
    es = connect(settings, quiet=True)
    _, model, _ = existing_model(es, index)
    if model is None:
        raise no_model_recorded(index)
    if embedder is None or embedder.model_id != model:
        embedder = embedder_for(settings, model)
    return SearchWidget(es, index, data_dir, embedder, detections(Path(data_dir)))
