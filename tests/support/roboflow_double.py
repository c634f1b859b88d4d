"""A stand-in for Roboflow's API on 127.0.0.1, speaking what the two real clients speak.

Read from their installed source:
- Roboflow Inference (`inference/core/roboflow_api.py`, `core/models/roboflow.py`):
  `GET {API_BASE_URL}/core_model/clip/<version>?nocache=true&device=...&dynamic=true[&api_key=K]`
  answers `{"weights": {name: url}}`; each url is then fetched and saved under its last path
  component. Storage answers carry Google Cloud Storage's `x-goog-hash: crc32c=...,md5=...`,
  which Inference checks when `MD5_VERIFICATION_ENABLED`.
- the roboflow SDK (`roboflow/__init__.py`, `adapters/rfapi.py`, `core/{workspace,project,version}.py`):
  `POST {API_URL}/?api_key=K` (key check, answers the workspace), `GET /<ws>?api_key=K`,
  `GET /<ws>/<project>?api_key=K` (project and its versions), `GET /<ws>/<project>/<v>?...&nocache=true`
  (still generating?), `GET /<ws>/<project>/<v>/<format>?...&nocache=true` (202 with progress while
  the export is made, then 200 with `export.link`), then the zip at that link.
Every endpoint answers 401 with Roboflow's OAuth error body (which echoes the key) for a
missing or wrong key. Faults are switched on per test through `faults`. As an https proxy
(`HTTPS_PROXY`), it records where else a client tried to go and lets nothing through.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

WORKSPACE, PROJECT, VERSION, FORMAT = "team-roboflow", "coco-128", "2", "yolov8"
CLIP_VERSION = "ViT-B-16"
EXPORT_NAME = "coco-128-2-yolov8.zip"


@dataclass
class Faults:
    """What goes wrong, per path prefix (e.g. "/core_model/", "/storage/clip/ViT-B-16/visual.onnx")."""

    status_once: dict[str, int] = field(default_factory=dict)  # answered once with this status
    truncate_once: set[str] = field(default_factory=set)  # half the body, consistent Content-Length
    stall: set[str] = field(default_factory=set)  # never answers (until the double stops)
    export_pending: int = 1  # 202 "in progress" answers before the export is ready
    missing_export: bool = False  # the version has no yolov8 export and cannot make one
    bad_zip: bool = False  # the export link serves something that is not a zip


@dataclass
class StoredFile:
    path: Path
    size: int
    md5: bytes


def unauthorized(key: str | None) -> dict:
    """Roboflow's answer to a bad key, echoing it: why every message must be scrubbed."""
    return {
        "error": {
            "message": "This API key does not exist (or has been revoked).",
            "status": 401,
            "type": "OAuthException",
            "hint": "You may retrieve your API key via the Roboflow Dashboard. Go to Account > Roboflow Keys.",
            "key": key or "",
        }
    }


class RoboflowDouble:
    """`with RoboflowDouble(weights_dir, export_zip, key) as double:` serves on `double.url`."""

    def __init__(self, weights_dir: Path, export_zip: bytes, key: str) -> None:
        self.key, self.export_zip = key, export_zip
        self.files = {
            name: StoredFile(path, path.stat().st_size, hashlib.md5(path.read_bytes()).digest())
            for name in ("visual.onnx", "textual.onnx")
            for path in [weights_dir / name]
        }
        self.faults = Faults()
        self.requests: list[str] = []  # "METHOD path" in arrival order, keys left out
        self.stopping = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> RoboflowDouble:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self, faults: Faults | None = None) -> None:
        self.faults, self.requests = faults or Faults(), []

    def served(self, prefix: str) -> int:
        """How many GETs of paths starting with `prefix` arrived."""
        return sum(1 for r in self.requests if r.startswith(f"GET {prefix}"))

    @contextmanager
    def faulty(self, **faults) -> Iterator[RoboflowDouble]:
        self.reset(Faults(**faults))
        try:
            yield self
        finally:
            self.reset()

    def take(self, kind: str, path: str) -> int | bool | None:
        """The fault of `kind` for `path`, consumed if it happens once."""
        if kind == "stall":
            return any(path.startswith(p) for p in self.faults.stall)
        table = getattr(self.faults, kind)
        for prefix in list(table):
            if path.startswith(prefix):
                value = table.pop(prefix) if isinstance(table, dict) else table.remove(prefix) or True
                return value
        return None

    # The answers, by endpoint.

    def metadata(self) -> dict:
        project = {
            "id": f"{WORKSPACE}/{PROJECT}",
            "type": "object-detection",
            "name": "COCO 128",
            "created": 1_650_000_000,
            "updated": 1_650_000_000,
            "images": 128,
            "unannotated": 0,
            "annotation": "objects",
            "public": True,
            "splits": {"train": 5, "valid": 2, "test": 0},
            "classes": {},
            "colors": {},
            "versions": 1,
        }
        version = {
            "id": f"{WORKSPACE}/{PROJECT}/{VERSION}",
            "name": "v2",
            "created": 1_650_000_000,
            "images": 7,
            "splits": {"train": 5, "valid": 2, "test": 0},
            "generating": False,
            "progress": 1.0,
            "augmentation": {},
            "preprocessing": {},
            "exports": [],
        }
        workspace = {"name": "Team Roboflow", "url": WORKSPACE, "members": 3, "projects": [project]}
        return {"workspace": workspace, "project": project, "version": version}

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, dict | None, dict]:
        """(status, JSON body, extra headers) for an API call; files are served elsewhere."""
        if (status := self.take("status_once", path)) is not None:
            return status, {"error": {"message": f"Internal error ({status})", "status": status}}, {}
        key = query.get("api_key", [None])[0]
        if key != self.key:
            return 401, unauthorized(key), {}
        meta = self.metadata()
        if method == "POST" and path == "/":
            return 200, {"welcome": "Welcome to the Roboflow API.", "workspace": WORKSPACE}, {}
        if path == f"/core_model/clip/{CLIP_VERSION}":
            storage = f"{self.url}/storage/clip/{CLIP_VERSION}"
            weights = {name.split(".")[0]: f"{storage}/{name}?X-Goog-Signature=abc" for name in self.files}
            return 200, {"weights": weights}, {}
        if path == f"/{WORKSPACE}":
            return 200, {"workspace": meta["workspace"]}, {}
        if path == f"/{WORKSPACE}/{PROJECT}":
            return 200, {"workspace": meta["workspace"], "project": meta["project"], "versions": [meta["version"]]}, {}
        if path == f"/{WORKSPACE}/{PROJECT}/{VERSION}":
            return 200, meta, {}
        if path == f"/{WORKSPACE}/{PROJECT}/{VERSION}/{FORMAT}":
            if self.faults.missing_export:
                message = f"Unsupported request. `GET {path}` does not exist or cannot be loaded."
                return 404, {"error": {"message": message, "type": "GraphMethodException"}}, {}
            if self.faults.export_pending > 0:
                self.faults.export_pending -= 1
                return 202, {"progress": 0.5}, {}
            link = f"{self.url}/exports/{EXPORT_NAME}?key=signed-export-link"
            return 200, {**meta, "export": {"link": link, "format": FORMAT, "size": len(self.export_zip)}}, {}
        return 404, {"error": {"message": f"no route {path}"}}, {}

    def handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.handle_any("POST")

            def do_GET(self) -> None:
                self.handle_any("GET")

            def do_CONNECT(self) -> None:
                """As an https proxy: records where a client wanted to go (GitHub, say), goes nowhere."""
                double.requests.append(f"CONNECT {self.path}")
                self.send(502, b"", {})

            def handle_any(self, method: str) -> None:
                url = urlsplit(self.path)
                if self.headers.get("Range") and url.path.startswith("/storage/"):  # a size probe, as storage answers
                    stored = double.files[url.path.rsplit("/", 1)[1]]
                    self.send(206, b"\0", {"Content-Range": f"bytes 0-0/{stored.size}"})
                    return
                double.requests.append(f"{method} {url.path}")
                if double.take("stall", url.path):
                    double.stopping.wait(120)
                    return
                if method == "GET" and url.path.startswith("/storage/"):
                    self.send_file(double.files[url.path.rsplit("/", 1)[1]], url.path)
                elif method == "GET" and url.path == f"/exports/{EXPORT_NAME}":
                    body = b"<html>Access denied</html>" if double.faults.bad_zip else double.export_zip
                    self.send(200, body, {"Content-Type": "application/zip"})
                else:
                    status, payload, headers = double.answer(method, url.path, parse_qs(url.query))
                    self.send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})

            def send_file(self, stored: StoredFile, path: str) -> None:
                if (status := double.take("status_once", path)) is not None:
                    self.send(status, b"<Error><Code>InternalError</Code></Error>", {})
                    return
                size = stored.size // 2 if double.take("truncate_once", path) else stored.size
                md5 = base64.b64encode(stored.md5).decode()
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.send_header("x-goog-hash", f"crc32c=AAAAAA==,md5={md5}")
                self.end_headers()
                with stored.path.open("rb") as source:
                    left = size
                    while left and (chunk := source.read(min(left, 1 << 20))):
                        self.wfile.write(chunk)
                        left -= len(chunk)

            def send(self, status: int, body: bytes, headers: dict) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler
