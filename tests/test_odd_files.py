"""Messy photo folders: every file is indexed or reported with a reason a person understands,
bombs are refused before decoding, and a second run changes nothing."""

import functools
import http.server
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers._fetch import ImageFetchError, fetch_image
from helpers._images import MAX_PIXELS, open_image, oriented_size, to_rgb
from helpers.cli import main

GOOD = {
    "gray.png": lambda: Image.new("L", (64, 48), 90),
    "cmyk.jpg": lambda: Image.new("CMYK", (64, 48), (0, 255, 255, 0)),
    "palette.gif": lambda: Image.new("RGB", (64, 48), "red").convert("P"),
    "sixteen.png": lambda: Image.fromarray(np.full((48, 64), 40000, np.uint16)),
    "alpha.png": lambda: Image.new("RGBA", (64, 48), (255, 0, 0, 0)),
    "UPPER CASE.JPG": lambda: Image.new("RGB", (64, 48), "green"),
    "nested/deeper/café ☕.webp": lambda: Image.new("RGB", (64, 48), "brown"),
}


def write_odd_folder(root: Path) -> None:
    for name, make in GOOD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        make().save(root / name)
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "blue")]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: shown as 48 wide, 64 high
    Image.new("RGB", (64, 48), "blue").save(root / "rotated.jpg", exif=exif)
    jpeg = io.BytesIO()
    Image.new("RGB", (640, 480), "red").save(jpeg, "JPEG")
    (root / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (root / "header-only.jpg").write_bytes(jpeg.getvalue()[:300])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("this is not a picture")
    Image.new("1", (12_000, 12_000)).save(root / "bomb.png")  # 144 MP in a few kB
    (root / "README.txt").write_text("not an image extension: not considered")


BROKEN = {"truncated.jpg", "header-only.jpg", "empty.png", "notes.jpg", "bomb.png"}


def test_a_messy_folder_indexes_every_good_file_and_reports_every_broken_one(offline_cli, tmp_path: Path, capsys):
    write_odd_folder(tmp_path / "photos")
    assert main(["index", str(tmp_path / "photos"), "--index", "odd", "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["indexed"] == len(GOOD) + 2  # + animated, rotated
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == BROKEN
    assert "too large to decode safely" in reasons["bomb.png"]
    assert reasons["empty.png"] == "empty file"
    assert "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "decode" in reasons["truncated.jpg"]

    assert main(["index", str(tmp_path / "photos"), "--index", "odd", "--json"]) == 1
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["indexed"], again["new"]) == (report["indexed"], 0)


def test_modes_become_the_picture_a_person_sees() -> None:
    assert to_rgb(Image.new("RGBA", (4, 4), (255, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("RGBA", (4, 4), (255, 0, 0, 255))).getpixel((0, 0)) == (255, 0, 0)
    sixteen = to_rgb(Image.fromarray(np.full((4, 4), 32768, np.uint16)))
    assert sixteen.getpixel((0, 0)) == (127, 127, 127)  # scaled, not clipped to white
    assert to_rgb(Image.new("CMYK", (4, 4), (0, 255, 255, 0))).getpixel((0, 0)) == (255, 0, 0)


def test_exif_rotation_is_applied_to_pixels_and_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    image = Image.new("RGB", (64, 48), "blue")
    image.paste((255, 0, 0), (0, 0, 8, 8))  # a red corner, top left before rotation
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    with open_image(tmp_path / "r.jpg") as opened:
        assert oriented_size(opened) == (48, 64)
        shown = to_rgb(opened)
    assert shown.size == (48, 64)
    assert shown.getpixel((44, 3))[0] > 200  # the red corner moved to the top right


def test_bombs_are_refused_from_the_header(tmp_path: Path) -> None:
    side = int(MAX_PIXELS**0.5) + 10
    Image.new("1", (side, side)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="too large to decode safely"):
        open_image(tmp_path / "big.png")


@pytest.fixture
def served(tmp_path: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_image_urls_are_capped_checked_and_http_only(served) -> None:
    folder, base = served
    Image.new("RGB", (32, 32), "red").save(folder / "ok.png")
    (folder / "page.html").write_text("<html>not an image</html>")
    Image.new("1", (12_000, 12_000)).save(folder / "bomb.png")
    assert fetch_image(f"{base}/ok.png").size == (32, 32)
    with pytest.raises(ImageFetchError, match="larger than"):
        fetch_image(f"{base}/ok.png", max_bytes=10)
    with pytest.raises(ImageFetchError, match="not an image"):
        fetch_image(f"{base}/page.html")
    with pytest.raises(ImageFetchError, match="too large to decode"):
        fetch_image(f"{base}/bomb.png")
    with pytest.raises(ImageFetchError, match="only http"):
        fetch_image("ftp://example.org/x.png")
    with pytest.raises(ImageFetchError, match="could not fetch"):
        fetch_image(f"{base}/missing.png")


def test_image_url_timeout(tmp_path: Path) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        with pytest.raises(ImageFetchError, match="could not fetch"):
            fetch_image(f"http://127.0.0.1:{silent.getsockname()[1]}/x.png", timeout=0.5)
    finally:
        silent.close()
