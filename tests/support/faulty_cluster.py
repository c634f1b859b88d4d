"""A real HTTP server on 127.0.0.1 that answers like Elasticsearch (the embedded engine
behind it) and misbehaves on purpose: every fault the fault-injection suite needs."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from embedded_es.api import handle
from embedded_es.errors import EsError
from embedded_es.node import store_for


@dataclass
class Faults:
    status_for_everything: int | None = None  # e.g. 401: every request refused
    bulk_statuses: list[int] = field(default_factory=list)  # answers for the next bulk requests
    rejected_ids: set[str] = field(default_factory=set)  # bulk items refused for good (400)
    requests: list[str] = field(default_factory=list)


class FaultyCluster:
    def __init__(self, data_dir: Path, faults: Faults | None = None, tls_dir: Path | None = None) -> None:
        self.faults = faults or Faults()
        store = store_for(data_dir)
        faults = self.faults

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def answer(self, status: int, payload: dict) -> None:
                data = b"" if self.command == "HEAD" else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("x-elastic-product", "Elasticsearch")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("content-length") or 0)) or None
                faults.requests.append(f"{self.command} {url.path}")
                if faults.status_for_everything:
                    error = EsError(faults.status_for_everything, "security_exception", "unable to authenticate user")
                    return self.answer(error.status, error.body())
                if url.path.endswith("/_bulk") and faults.bulk_statuses:
                    status = faults.bulk_statuses.pop(0)
                    return self.answer(status, EsError(status, "unavailable", "try again later").body())
                if url.path.endswith("/_bulk") and faults.rejected_ids:
                    body, refused = self.drop_rejected(body)
                else:
                    refused = []
                try:
                    status, payload = handle(store, self.command, unquote(url.path), dict(parse_qsl(url.query)), body)
                except EsError as error:
                    status, payload = error.status, error.body()
                if refused:
                    payload["errors"] = True
                    payload["items"] += refused
                self.answer(status, payload)

            def drop_rejected(self, body: bytes) -> tuple[bytes, list[dict]]:
                """Take rejected documents out of a bulk body and answer them with a 400 each."""
                lines, kept, refused = body.decode().strip().split("\n"), [], []
                for action, source in zip(lines[::2], lines[1::2]):
                    ((op, meta),) = json.loads(action).items()
                    if meta.get("_id") in faults.rejected_ids:
                        error = {"type": "document_parsing_exception", "reason": "failed to parse field [labels]"}
                        refused.append(
                            {op: {"_index": meta.get("_index"), "_id": meta["_id"], "status": 400, "error": error}}
                        )
                    else:
                        kept += [action, source]
                return ("\n".join(kept) + "\n").encode(), refused

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls_dir is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self_signed_certificate(tls_dir))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)
