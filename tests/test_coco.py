"""The public COCO 128 zip, exercised without the internet: a local HTTP server stands in for
its host. (The Roboflow SDK's path runs against a double of Roboflow's API in test_online.py.)"""

import http.server
import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from helpers._download import COCO_CLASS_NAMES, DatasetUnavailable
from helpers._scan import ImageRecord, scan
from helpers._settings import Settings
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


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port whose connections are never accepted: the listen queue is full, so the kernel
    drops the next handshake, as a firewall that drops packets does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())
    yield f"http://127.0.0.1:{server.getsockname()[1]}/coco128.zip"
    filler.close()
    server.close()


def test_public_zip_gives_up_quickly_when_nothing_answers(tmp_path: Path, black_hole: str) -> None:
    from helpers._download import DOWNLOAD_TIMEOUT_S

    started = time.perf_counter()
    with pytest.raises(DatasetUnavailable) as caught:
        download_coco128(tmp_path / "c", Settings(), url=black_hole)
    assert time.perf_counter() - started < DOWNLOAD_TIMEOUT_S[0] + 3
    assert "no answer in time" in str(caught.value) and "demo-data" in str(caught.value)
