"""The embedded engine's approximate kNN (issue #24), beyond what a cluster can be asked:
the graph is deterministic, near-real-time, saved beside the store and rebuilt when missing,
stale or damaged, and a `kill -9` during a refresh loses nothing acknowledged."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import BadRequestError
from elasticsearch.helpers import bulk

from embedded_es import embedded_client
from embedded_es.ann import Graph
from embedded_es.node import close_store, store_for
from helpers._settings import PROJECT_ROOT
from helpers.synthetic import spectrum_vectors

DIMS, DOCS = 64, 1200


def create(es, kind: str = "hnsw") -> None:
    vector = {"type": "dense_vector", "dims": DIMS, "similarity": "cosine", "index_options": {"type": kind}}
    es.indices.create(index="ann", mappings={"properties": {"v": vector}})


def put(es, vectors: np.ndarray, first: int = 0, chunk: int = 500, refresh: bool = False) -> None:
    actions = ({"_index": "ann", "_id": str(first + i), "v": v.tolist()} for i, v in enumerate(vectors))
    bulk(es, actions, chunk_size=chunk, refresh=refresh)


def top(es, queries: np.ndarray, num_candidates: int = 20, k: int = 10) -> list[list[str]]:
    found = []
    for q in queries:
        clause = {"field": "v", "query_vector": q.tolist(), "k": k, "num_candidates": num_candidates}
        found.append([h["_id"] for h in es.search(index="ann", knn=clause, size=k, source=False)["hits"]["hits"]])
    return found


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return spectrum_vectors(DOCS, DIMS, seed=21), spectrum_vectors(20, DIMS, seed=22)


def graph_file(path: Path) -> Path:
    return next((path / "graphs").rglob("v.npz"))


def test_same_documents_in_the_same_order_give_the_same_graph(tmp_path: Path, data) -> None:
    vectors, queries = data
    answers, graphs = [], []
    for run, (chunk, refresh_every) in enumerate([(500, None), (37, 300)]):  # batching and refreshes differ
        es = embedded_client(tmp_path / f"e{run}")
        create(es)
        for start in range(0, DOCS, refresh_every or DOCS):
            put(es, vectors[start : start + (refresh_every or DOCS)], start, chunk)
            es.indices.refresh(index="ann")
        answers.append(top(es, queries))
        store = store_for(tmp_path / f"e{run}")
        graphs.append(store.graphs[(store.view("ann").uuid, "v")].index)
    assert answers[0] == answers[1]
    import faiss

    assert np.array_equal(faiss.serialize_index(graphs[0]), faiss.serialize_index(graphs[1]))


def test_a_small_pool_misses_what_a_large_one_finds(tmp_path: Path, data) -> None:
    vectors, queries = data
    es = embedded_client(tmp_path)
    create(es)
    put(es, vectors, refresh=True)
    small, large = top(es, queries, num_candidates=10), top(es, queries, num_candidates=1000)
    truth = [[str(i) for i in np.argsort(-(vectors @ q), kind="stable")[:10]] for q in queries]
    assert large == truth  # a pool as large as the index: every true neighbour
    assert small != truth  # the beam of 10 misses some


def test_deletes_and_updates_hide_the_old_vector_at_once(tmp_path: Path, data) -> None:
    vectors, queries = data
    es = embedded_client(tmp_path)
    create(es)
    put(es, vectors, refresh=True)
    best = top(es, queries[:1], k=1)[0][0]
    es.delete(index="ann", id=best)  # no refresh
    assert best not in top(es, queries[:1])[0]
    moved = top(es, queries[1:2], k=1)[0][0]
    es.index(index="ann", id=moved, document={"v": (-queries[1]).tolist()})  # now the farthest
    assert moved not in top(es, queries[1:2])[0]
    es.index(index="ann", id="new", document={"v": queries[2].tolist()})
    assert top(es, queries[2:3], k=1)[0] == ["new"]


def test_the_graph_is_rebuilt_once_deletions_pass_the_threshold(tmp_path: Path, data) -> None:
    vectors, queries = data
    es = embedded_client(tmp_path)
    create(es)
    put(es, vectors, refresh=True)
    store = store_for(tmp_path)
    graph = store.graphs[(store.view("ann").uuid, "v")]
    bulk(es, ({"_op_type": "delete", "_index": "ann", "_id": str(i)} for i in range(0, DOCS, 5)), refresh=True)
    assert graph.index.ntotal == DOCS  # a fifth deleted: tombstones, under the threshold
    bulk(es, ({"_op_type": "delete", "_index": "ann", "_id": str(i)} for i in range(1, DOCS, 5)), refresh=True)
    assert graph.index.ntotal == DOCS * 3 // 5  # two fifths: compacted, no tombstones kept
    found = top(es, queries, num_candidates=200)
    assert all(int(i) % 5 > 1 for ids in found for i in ids)


def test_the_saved_graph_is_reused_and_a_damaged_one_rebuilt_with_the_same_hits(
    tmp_path: Path, data, monkeypatch
) -> None:
    vectors, queries = data
    es = embedded_client(tmp_path)
    create(es)
    put(es, vectors, refresh=True)
    before = top(es, queries)
    close_store(tmp_path)
    built = []
    original = Graph.new_index
    monkeypatch.setattr(Graph, "new_index", lambda self, sample: built.append(1) or original(self, sample))
    assert top(embedded_client(tmp_path), queries) == before and built == []  # loaded, not rebuilt
    close_store(tmp_path)
    saved = graph_file(tmp_path)
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])  # a torn file
    assert top(embedded_client(tmp_path), queries) == before and built == [1]
    close_store(tmp_path)
    saved.unlink()
    assert top(embedded_client(tmp_path), queries) == before and built == [1, 1]


def test_a_graph_saved_before_later_writes_is_brought_up_to_date(tmp_path: Path, data) -> None:
    vectors, queries = data
    es = embedded_client(tmp_path)
    create(es)
    put(es, vectors[:600], refresh=True)
    kept = graph_file(tmp_path).read_bytes()
    put(es, vectors[600:], first=600, refresh=True)
    es.delete(index="ann", id="5", refresh=True)
    expected = top(es, queries, num_candidates=1000)
    close_store(tmp_path)
    graph_file(tmp_path).write_bytes(kept)  # stale: 600 nodes, one since deleted
    found = top(embedded_client(tmp_path), queries, num_candidates=1000)
    assert found == expected and all("5" not in ids for ids in found)


def test_another_process_writes_are_seen_by_the_graph(tmp_path: Path, data) -> None:
    vectors, queries = data
    es = embedded_client(tmp_path)
    create(es)
    put(es, vectors[:600], refresh=True)
    top(es, queries)
    script = (
        "import sys, json; from embedded_es import embedded_client; "
        "es = embedded_client(sys.argv[1]); "
        "es.index(index='ann', id='other', document={'v': json.loads(sys.argv[2])}, refresh=True)"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(queries[3].tolist())], cwd=PROJECT_ROOT,
                   check=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})  # fmt: skip
    assert top(es, queries[3:4], k=1)[0] == ["other"]


WRITER = """
import sys
import numpy as np
from elasticsearch.helpers import bulk
from embedded_es import embedded_client
from helpers.synthetic import spectrum_vectors
es = embedded_client(sys.argv[1])
vectors = spectrum_vectors(int(sys.argv[2]), int(sys.argv[3]), seed=5)
es.indices.create(index="ann", mappings={"properties": {"v": {"type": "dense_vector", "dims": vectors.shape[1],
    "similarity": "cosine", "index_options": {"type": "hnsw"}}}})
bulk(es, ({"_index": "ann", "_id": str(i), "v": v.tolist()} for i, v in enumerate(vectors)), chunk_size=1000)
print("acknowledged", flush=True)
while True:
    es.indices.refresh(index="ann")
    es.index(index="ann", id="extra", document={"v": vectors[0].tolist()})
    print("refreshed", flush=True)
"""


def test_kill_9_during_a_refresh_loses_nothing_acknowledged(tmp_path: Path) -> None:
    count, dims = 6000, 128
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-c", WRITER, str(tmp_path), str(count), str(dims)]
    writer = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "acknowledged"
    time.sleep(1.0)  # inside the first refresh: building the graph (or writing it out)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    es = embedded_client(tmp_path)
    assert es.count(index="ann")["count"] in (count, count + 1)
    queries = spectrum_vectors(10, dims, seed=6)
    reopened = top(es, queries)
    close_store(tmp_path)
    assert top(embedded_client(tmp_path), queries) == reopened  # the next open gives the same hits


def test_num_candidates_over_the_limit_is_refused(tmp_path: Path, data) -> None:
    es = embedded_client(tmp_path)
    create(es)
    put(es, data[0][:10], refresh=True)
    with pytest.raises(BadRequestError, match="cannot exceed"):
        top(es, data[1][:1], num_candidates=10_001)


def test_bbq_hnsw_ranks_by_inner_product_over_vectors_of_any_length(tmp_path: Path) -> None:
    """max_inner_product with bbq_hnsw: the graph is walked by inner product, its candidates
    scored with the one-bit codes, and the best k x 3 rescored with the floats (9.1's default)."""
    dims = 256  # one bit per dimension: at Elasticsearch's minimum of 64 the codes rank coarsely
    vectors, queries = spectrum_vectors(DOCS, dims, seed=21), spectrum_vectors(20, dims, seed=22)
    lengths = np.random.default_rng(5).uniform(0.5, 2.0, (DOCS, 1)).astype(np.float32)
    vectors = vectors * lengths  # inner product now favours long vectors, which L2 would not find
    es = embedded_client(tmp_path)
    options = {"type": "bbq_hnsw"}
    vector = {"type": "dense_vector", "dims": dims, "similarity": "max_inner_product", "index_options": options}
    es.indices.create(index="ann", mappings={"properties": {"v": vector}})
    put(es, vectors, refresh=True)
    found = top(es, queries, num_candidates=100)
    truth = [[str(i) for i in np.argsort(-(vectors @ q), kind="stable")[:10]] for q in queries]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9
    clause = {"field": "v", "query_vector": queries[0].tolist(), "k": 3, "num_candidates": 100}
    hit = es.search(index="ann", knn=clause, size=3, source=False)["hits"]["hits"][0]
    inner = float(vectors[int(hit["_id"])] @ queries[0])
    assert hit["_score"] == pytest.approx(inner + 1 if inner >= 0 else 1 / (1 - inner), rel=1e-5)  # rescored
    unrescored = es.search(index="ann", knn={**clause, "rescore_vector": {"oversample": 0}}, size=3)
    assert unrescored["hits"]["hits"][0]["_score"] != hit["_score"]  # the codes' estimate
    close_store(tmp_path)
    assert top(embedded_client(tmp_path), queries, num_candidates=100) == found  # graph and codes reloaded


def test_a_repeated_filter_sees_every_write_before_it(tmp_path: Path, data) -> None:
    """A kNN pre-filter's mask and the graph's selector are kept between searches: a write
    in between (a label changed, a vector replaced, a document deleted) is seen at once."""
    vectors, queries = data
    es = embedded_client(tmp_path)
    vector = {"type": "dense_vector", "dims": DIMS, "similarity": "cosine", "index_options": {"type": "hnsw"}}
    es.indices.create(index="ann", mappings={"properties": {"v": vector, "label": {"type": "keyword"}}})
    labels = ["even" if i % 2 == 0 else "odd" for i in range(DOCS)]
    actions = ({"_index": "ann", "_id": str(i), "v": v.tolist(), "label": labels[i]} for i, v in enumerate(vectors))
    bulk(es, actions, chunk_size=500, refresh=True)
    # 600 of 1200 let through, beam 10: ln(1200) * 10 < 600, so the graph is searched, not the rows
    clause = {"field": "v", "query_vector": queries[0].tolist(), "k": 5, "num_candidates": 10,
              "filter": {"term": {"label": "even"}}}  # fmt: skip

    def hits() -> list[str]:
        return [h["_id"] for h in es.search(index="ann", knn=clause, size=5, source=False)["hits"]["hits"]]

    first = hits()
    assert first == hits() and all(int(i) % 2 == 0 for i in first)
    es.index(index="ann", id=first[0], document={"v": vectors[int(first[0])].tolist(), "label": "odd"})
    assert first[0] not in hits()  # relabelled: the filter no longer lets it through
    es.index(index="ann", id="1", document={"v": queries[0].tolist(), "label": "even"}, refresh=True)
    assert hits()[0] == "1"  # a replaced vector (a tombstone and a new node) found through the filter
    es.delete(index="ann", id="1")
    assert "1" not in hits() and all(int(i) % 2 == 0 for i in hits())
