"""COCO 128 download paths, exercised without the internet: a local HTTP server stands in
for the public zip's host, and a stub module stands in for the Roboflow SDK."""

import http.server
import io
import socket
import sys
import threading
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from helpers._download import COCO_CLASS_NAMES, DatasetUnavailable
from helpers._scan import ImageRecord, scan
from helpers._settings import Secret, Settings
from helpers.data import download_coco128


def coco128_zip() -> bytes:
    """A two-image zip in the public COCO 128 layout."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        labels = {"000000000009": "41 0.5 0.5 0.2 0.2\n45 0.3 0.3 0.1 0.1", "000000000025": "23 0.5 0.5 0.9 0.9"}
        for stem, label in labels.items():
            jpg = io.BytesIO()
            Image.new("RGB", (64, 48), "orange").save(jpg, "JPEG")
            archive.writestr(f"coco128/images/train2017/{stem}.jpg", jpg.getvalue())
            archive.writestr(f"coco128/labels/train2017/{stem}.txt", label)
        archive.writestr("coco128/LICENSE", "AGPL")
    return buffer.getvalue()


@pytest.fixture
def zip_server() -> Iterator[tuple[str, list[str]]]:
    body, requests = coco128_zip(), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/coco128.zip", requests
    server.shutdown()


def test_public_zip_without_a_key(tmp_path: Path, zip_server) -> None:
    url, requests = zip_server
    dest = download_coco128(tmp_path / "coco128", Settings(), url=url)
    records = sorted((r for r in scan(dest) if isinstance(r, ImageRecord)), key=lambda r: r.filename)
    assert [r.filename for r in records] == ["images/train2017/000000000009.jpg", "images/train2017/000000000025.jpg"]
    assert records[0].labels == ("bowl", "cup")  # COCO ids 41 and 45
    assert records[1].labels == ("giraffe",)
    assert len(COCO_CLASS_NAMES) == 80

    download_coco128(dest, Settings(), url=url)
    assert len(requests) == 1  # already there: not fetched again


def test_roboflow_sdk_with_a_key(tmp_path: Path, monkeypatch) -> None:
    calls = []

    class Version:
        def download(self, model_format: str, location: str, overwrite: bool) -> None:
            calls.append(("download", model_format, overwrite))
            (Path(location) / "train" / "images").mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(Path(location) / "train" / "images" / "x.jpg")
            (Path(location) / "data.yaml").write_text("names: [cup]\n")

    class Roboflow:
        def __init__(self, api_key: str) -> None:
            calls.append(("key", api_key))

        def workspace(self, name: str):
            calls.append(("workspace", name))
            return types.SimpleNamespace(
                project=lambda p: calls.append(("project", p))
                or types.SimpleNamespace(version=lambda v: calls.append(("version", v)) or Version())
            )

    monkeypatch.setitem(sys.modules, "roboflow", types.SimpleNamespace(Roboflow=Roboflow))
    dest = download_coco128(tmp_path / "c", Settings(roboflow_api_key=Secret("rf-key")), url="http://unused")
    assert calls == [
        ("key", "rf-key"),
        ("workspace", "team-roboflow"),
        ("project", "coco-128"),
        ("version", 2),
        ("download", "yolov8", True),
    ]
    assert (dest / "data.yaml").is_file()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_gives_one_line_naming_the_demo_option(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as caught:
        download_coco128(tmp_path / "c", Settings(), url=f"http://127.0.0.1:{closed_port()}/coco128.zip")
    message = str(caught.value)
    assert "\n" not in message and "demo-data" in message
    assert not (tmp_path / "c" / "data.yaml").exists()


def test_cli_offline_exits_2_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from helpers import cli
    from helpers import data as coco

    monkeypatch.setattr(coco, "PUBLIC_ZIP_URL", f"http://127.0.0.1:{closed_port()}/coco128.zip")
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    monkeypatch.setattr(coco.download_coco128, "__defaults__", (coco.PUBLIC_ZIP_URL,))
    assert cli.main(["download-coco", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not download COCO 128") and "\n" not in err
