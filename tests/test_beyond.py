"""Beyond the guide, on demo data with a planted re-encoded copy: near-duplicates, more like
this, label and date pre-filters, a score floor, zero-shot labels, hybrid and mixed queries,
pages; through the library and through the CLI."""

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from embedded_es import embedded_client
from helpers import hybrid, search
from helpers._offline.demo_data import plant_near_duplicates
from helpers._scan import ImageRecord, scan, sha256_of
from helpers.classify import classify, parse_labels
from helpers.cli import main
from helpers.dedup import close_pairs, connected_groups, find_duplicates
from helpers.evaluate import knn_recall, precision_by_class
from helpers.index import IndexMismatch, ensure_index, index_folder

INDEX = "beyond"
PROMPT = "a photo of a red circle"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, demo_set: Path, embedder) -> dict:
    """The demo set indexed, then one re-encoded copy indexed in a second upload."""
    data = tmp_path_factory.mktemp("beyond") / "data"
    shutil.copytree(demo_set, data)
    engine = tmp_path_factory.mktemp("engine")
    es = embedded_client(engine)
    index_folder(es, embedder, data, INDEX, progress=False)
    time.sleep(0.01)
    cutoff = datetime.now(UTC).isoformat(timespec="milliseconds")
    [(original, copy)] = plant_near_duplicates(data, 1, quality=60, seed=5)
    report = index_folder(es, embedder, data, INDEX, progress=False)
    assert report.new == 1
    yield {"es": es, "data": data, "engine": engine, "original": original, "copy": copy, "cutoff": cutoff}
    es.close()


def test_dedup_groups_the_planted_copy_with_few_false_groups(planted) -> None:
    groups = find_duplicates(planted["es"], INDEX)
    names = [{Path(m["filename"]).name for m in group} for group in groups]
    pair = {planted["original"].name, planted["copy"].name}
    assert any(pair <= group for group in names)
    assert len(groups) <= 3  # measured: at most two false groups in a 128-image demo set
    assert all(set(m) == {"id", "filename"} for group in groups for m in group)


def test_close_pairs_in_blocks_equal_all_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = np.random.default_rng(2).normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    expected = {(i, j) for i in range(300) for j in range(i + 1, 300) if similarity[i, j] >= 0.7}
    monkeypatch.setattr("helpers.dedup.BLOCK_CELLS", 300 * 7)  # 7 rows per block: many blocks
    assert set(close_pairs(vectors, 0.7)) == expected
    assert connected_groups(4, iter([(0, 1), (1, 2)])) == [[0, 1, 2]]


def test_more_like_this_returns_the_copy_first(planted) -> None:
    hits = search.search_similar(planted["es"], INDEX, sha256_of(planted["original"])[:12], k=3)
    assert Path(hits[0].filename).name == planted["copy"].name
    assert hits[0].score > 0.99
    assert sha256_of(planted["original"]) not in [hit.id for hit in hits]


def test_label_pre_filter_lets_nothing_else_through_and_fills_k(planted, embedder) -> None:
    hits = search.search_text(planted["es"], embedder, INDEX, PROMPT, k=5, labels=["blue square"])
    assert len(hits) == 5 and all("blue square" in hit.labels for hit in hits)


def test_date_filters_split_the_two_uploads(planted, embedder) -> None:
    later = search.search_text(planted["es"], embedder, INDEX, PROMPT, k=5, since=planted["cutoff"])
    earlier = search.search_text(planted["es"], embedder, INDEX, PROMPT, k=200, until=planted["cutoff"])
    assert [Path(hit.filename).name for hit in later] == [planted["copy"].name]
    assert len(earlier) == 128 and planted["copy"].name not in {Path(h.filename).name for h in earlier}


def test_a_floor_near_one_returns_less_than_a_page(planted, embedder) -> None:
    hits = search.search_text(planted["es"], embedder, INDEX, PROMPT, k=10, min_similarity=0.98)
    assert len(hits) < 10


def test_pages_continue_each_other(planted, embedder) -> None:
    pages = [search.search_text(planted["es"], embedder, INDEX, PROMPT, k=4, page=n) for n in (1, 2, 3)]
    whole = search.search_text(planted["es"], embedder, INDEX, PROMPT, k=12)
    assert [hit.id for page in pages for hit in page] == [hit.id for hit in whole]


def test_mixed_query_moves_between_picture_and_words(planted, embedder) -> None:
    es, original = planted["es"], planted["original"]
    options = {"k": 5, "similar_to": sha256_of(original)}
    pure_picture = search.search_similar(es, INDEX, sha256_of(original), k=5)
    pure_words = search.search_text(es, embedder, INDEX, "a photo of a blue square", k=5)
    at_0 = search.search_mixed(es, embedder, INDEX, "a photo of a blue square", text_weight=0.0, **options)
    at_1 = search.search_mixed(es, embedder, INDEX, "a photo of a blue square", text_weight=1.0, **options)
    halfway = search.search_mixed(es, embedder, INDEX, "a photo of a blue square", text_weight=0.5, **options)
    assert [h.id for h in at_0] == [h.id for h in pure_picture]
    assert [h.id for h in at_1] == [h.id for h in pure_words if h.id != sha256_of(original)][:5]
    blue = [sum("blue square" in h.labels for h in hits) for hits in (pure_picture, halfway, pure_words)]
    assert blue[0] < blue[1] <= blue[2]


def test_hybrid_linear_fusion_adds_word_matches_to_knn(planted, embedder) -> None:
    es = planted["es"]
    hits, fusion = hybrid.hybrid_search(es, embedder, INDEX, "green circle", k=10, fusion="linear")
    plain = search.search_text(es, embedder, INDEX, "green circle", k=10)
    assert fusion == "linear"
    assert sum("green circle" in h.labels for h in hits) >= sum("green circle" in h.labels for h in plain)
    assert all({"green", "circle"} & set(" ".join(h.labels).split()) for h in hits)


def test_hybrid_on_the_engine_is_an_rrf_retriever(planted, embedder) -> None:
    """The engine answers retrievers, so `auto` picks RRF there; its ranking is the fusion of
    the word ranking and the kNN ranking, each cut at the window."""
    es = planted["es"]
    hits, fusion = hybrid.hybrid_search(es, embedder, INDEX, "green circle", k=5)
    assert fusion == "rrf"
    clause = search.knn_clause(embedder.embed_texts(["green circle"])[0], k=5)
    words = es.search(index=INDEX, query=hybrid.words_query("green circle", []), size=5, source=False)
    near = es.search(index=INDEX, knn=clause, size=5, source=False)
    fused: dict[str, float] = {}
    for answer in (words, near):
        for rank, hit in enumerate(answer["hits"]["hits"], 1):
            fused[hit["_id"]] = fused.get(hit["_id"], 0.0) + 1 / (hybrid.RANK_CONSTANT + rank)
    best = sorted(fused.values(), reverse=True)[:5]
    assert np.allclose(sorted((h.score for h in hits), reverse=True), best)


def test_rrf_request_fuses_a_word_retriever_and_knn_with_the_same_filters() -> None:
    clause = search.knn_clause(np.ones(4, np.float32), k=20, labels=["cat"])
    body = hybrid.rrf_body(clause, "cat")
    standard, knn = body["retriever"]["rrf"]["retrievers"]
    assert standard["standard"]["query"]["bool"]["filter"] == knn["knn"]["filter"] == [{"term": {"labels": "cat"}}]
    assert body["retriever"]["rrf"]["rank_window_size"] >= 20


def test_zero_shot_ranks_a_true_label_first(planted, embedder) -> None:
    record = next(r for r in scan(planted["data"]) if isinstance(r, ImageRecord) and len(r.labels) == 1)
    candidates = ["red circle", "blue square", "green triangle", "white cross", "yellow square", "purple circle"]
    candidates = list(dict.fromkeys([*record.labels, *candidates]))
    ranked = classify(embedder, record.path, candidates)
    assert ranked[0]["label"] == record.labels[0]
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert abs(sum(r["probability"] for r in ranked) - 1) < 1e-4
    with pytest.raises(ValueError, match="at least two"):
        parse_labels("cat, ,cat")


def test_precision_by_class_and_recall_through_the_index(planted, embedder) -> None:
    precision = precision_by_class(planted["es"], embedder, INDEX, ["red circle", "blue square"], k=5)
    assert min(precision.values()) >= 0.8
    queries = embedder.embed_texts(["a photo of a red circle", "a photo of a blue cross"])
    rows = knn_recall(planted["es"], INDEX, queries, k=10, num_candidates=(10, 100))
    assert [row["recall"] for row in rows] == [1.0, 1.0]  # the engine is exact


def test_an_index_of_an_older_mapping_is_refused(tmp_path: Path) -> None:
    es = embedded_client(tmp_path)
    es.indices.create(index="old", mappings={"_meta": {"model": "clip/demo"}, "properties": {}})
    with pytest.raises(IndexMismatch, match="--recreate"):
        ensure_index(es, "old", 512, "clip/demo")


def run_json(argv: list[str], capsys) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_dedup_classify_and_search_flags(planted, offline_cli: Path, capsys) -> None:
    shutil.copytree(planted["engine"], offline_cli)
    groups = run_json(["dedup", "--index", INDEX, "--json"], capsys)
    assert any({Path(m["filename"]).name for m in g} >= {planted["copy"].name} for g in groups)
    ranked = run_json(["classify", str(planted["copy"]), "--labels", "red circle,blue square", "--json"], capsys)
    assert [set(r) for r in ranked] == [{"label", "score", "probability"}] * 2
    common = ["search", "--index", INDEX, "--json", "--k", "3"]
    recent = run_json([*common, "--text", PROMPT, "--since", planted["cutoff"]], capsys)
    assert [Path(h["filename"]).name for h in recent] == [planted["copy"].name]
    mixed = run_json([*common, "--text", "blue", "--similar-to", sha256_of(planted["original"])[:12]], capsys)
    assert len(mixed) == 3
    hybrid_hits = run_json([*common, "--text", "green circle", "--hybrid", "--page", "2"], capsys)
    assert len(hybrid_hits) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--text", "x", "--since", "2024-13-01"], "is not a date"),
        (["search", "--text", "x", "--page", "0"], "--page"),
        (["search", "--image", "missing.jpg", "--hybrid"], "not a file"),
        (["search", "--similar-to", "abc", "--hybrid"], "--hybrid works on --text alone"),
        (["search", "--text", "x", "--text-weight", "2"], "between 0 and 1"),
        (["search"], "give a query"),
        (["dedup", "--threshold", "1.5"], "--threshold"),
        (["classify", "missing.jpg", "--labels", "a,b"], "not a file"),
        (["classify", "missing.jpg", "--labels", "a"], "at least two"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(offline_cli: Path, capsys, argv: list[str], message: str) -> None:
    """Before connecting: with no engine folder and no cluster, nothing is created."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not offline_cli.exists()
