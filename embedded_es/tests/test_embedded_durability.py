"""The embedded engine across processes and crashes: what was acknowledged survives a
`kill -9`, the store still opens, and another process sees what one indexed."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from embedded_es import embedded_client
from helpers.index import VECTOR_FIELD, index_mapping

WRITER = """
import sys
from pathlib import Path
from elasticsearch.helpers import bulk
from embedded_es import embedded_client
from helpers.index import VECTOR_FIELD, index_mapping
es = embedded_client(Path(sys.argv[1]))
if not es.indices.exists(index="crash"):
    es.indices.create(index="crash", mappings=index_mapping(8, "test/model"))
batch = 0
while True:
    ids = [f"b{batch}-{i}" for i in range(200)]
    bulk(es, [{"_index": "crash", "_id": i, "_source": {VECTOR_FIELD: [1.0 + n] * 8}} for n, i in enumerate(ids)])
    print(json.dumps(ids), flush=True)  # acknowledged: bulk() returned
    batch += 1
""".replace("import sys", "import json, sys", 1)

READER = """
import json, sys
from pathlib import Path
from embedded_es import embedded_client
es = embedded_client(Path(sys.argv[1]))
print(json.dumps(es.count(index=sys.argv[2])["count"]))
"""


def run_python(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_another_process_sees_what_this_one_indexed(tmp_path: Path) -> None:
    es = embedded_client(tmp_path)
    es.indices.create(index="shared", mappings=index_mapping(4, "test/model"))
    for i in range(5):
        es.index(index="shared", id=str(i), document={VECTOR_FIELD: [1.0, i, 0.0, 0.5]})
    assert json.loads(run_python(READER, str(tmp_path), "shared")) == 5

    # ...and this process sees what another one wrote after it had loaded the index.
    assert es.count(index="shared")["count"] == 5
    run_python(
        "import sys\nfrom pathlib import Path\nfrom embedded_es import embedded_client\n"
        "es = embedded_client(Path(sys.argv[1]))\n"
        "es.index(index='shared', id='new', document={'image_vector': [0.0, 1.0, 0.0, 0.0]})\n",
        str(tmp_path),
    )
    assert es.count(index="shared")["count"] == 6


def test_kill_9_mid_write_loses_nothing_acknowledged(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 1000 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        acknowledged += json.loads(line)
    os.kill(writer.pid, signal.SIGKILL)  # mid-write: it was sending the next bulk request
    writer.wait()
    assert len(acknowledged) >= 1000, "the writer did not get going"

    with sqlite3.connect(tmp_path / "engine.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    es = embedded_client(tmp_path)
    found = es.search(index="crash", query={"ids": {"values": acknowledged}}, size=len(acknowledged), source=False)
    assert found["hits"]["total"]["value"] == len(acknowledged)
    count = es.count(index="crash")["count"]
    assert count % 200 == 0 and count >= len(acknowledged)  # whole bulk requests only, never half of one
