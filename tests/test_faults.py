"""Fault injection: clusters that are away, refuse, lie about TLS, throttle or reject
documents. Each fault is one clear line from the CLI (exit status 2, no traceback), a
readable exception in Python, never a secret in either, and never a silently lost image."""

import json
import logging
import socket
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

import helpers._bulk
from helpers._offline.demo_data import write_demo_dataset
from helpers._settings import load_settings
from helpers.cli import main
from helpers.connect import ClusterError, connect
from helpers.index import index_mapping
from tests.support.faulty_cluster import Faults, FaultyCluster

SECRETS = {"ELASTIC_API_KEY": "key-d34db33f", "ELASTIC_PASSWORD": "pw-c0ffee"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster_env(monkeypatch):
    """Point the project at a cluster URL, with secrets that must never be printed."""

    def point_at(url: str, **extra: str) -> None:
        for name in ("ELASTIC_CLOUD_ID", "ELASTIC_USERNAME", "ELASTIC_VERIFY_CERTS", "ELASTIC_CA_CERTS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ELASTICSEARCH_URL", url)
        monkeypatch.setenv("CLIP_MODEL", "demo")
        for name, value in {**SECRETS, **extra}.items():
            monkeypatch.setenv(name, value)

    return point_at


@pytest.fixture
def faulty(tmp_path: Path):
    clusters = []

    def start(faults: Faults | None = None, tls: bool = False) -> FaultyCluster:
        cluster = FaultyCluster(tmp_path / f"engine{len(clusters)}", faults, tls_dir=tmp_path if tls else None)
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.close()


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_clean_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for secret in [*SECRETS.values(), "hunter2"]:
        assert secret not in err


def test_unreachable_cluster(cluster_env, capsys, caplog) -> None:
    cluster_env(f"http://elastic:hunter2@127.0.0.1:{closed_port()}")
    with caplog.at_level(logging.DEBUG):
        status, _, err = run_cli(["search", "--text", "a red circle"], capsys)
    assert status == 2
    assert_one_clean_line(err)
    assert "cannot reach the Elasticsearch cluster at http://***@127.0.0.1" in err
    assert caplog.records, "the client logs its retries"
    for secret in [*SECRETS.values(), "hunter2"]:
        assert secret not in caplog.text


def test_wrong_credentials(cluster_env, faulty, capsys) -> None:
    cluster = faulty(Faults(status_for_everything=401))
    cluster_env(cluster.url)
    status, _, err = run_cli(["search", "--text", "a red circle"], capsys)
    assert status == 2
    assert_one_clean_line(err)
    assert "rejected the credentials (401)" in err
    with pytest.raises(ClusterError, match="ELASTIC_API_KEY"):  # the same, readable, in a notebook
        connect(load_settings(), quiet=True)


def test_tls_verification_failure_and_explicit_opt_out(cluster_env, faulty, capsys) -> None:
    cluster = faulty(tls=True)
    cluster_env(cluster.url)
    status, _, err = run_cli(["search", "--text", "a red circle"], capsys)
    assert status == 2
    assert_one_clean_line(err)
    assert "TLS certificate verification failed" in err and "ELASTIC_CA_CERTS" in err

    cluster_env(cluster.url, ELASTIC_VERIFY_CERTS="false")
    with pytest.warns(UserWarning, match="verification is OFF"):
        es = connect(load_settings(), quiet=True)
    assert es.info()["tagline"] == "You Know, for Search"


def test_missing_index(cluster_env, faulty, capsys) -> None:
    cluster_env(faulty().url)
    status, _, err = run_cli(["search", "--text", "a red circle", "--index", "nope"], capsys)
    assert status == 2
    assert_one_clean_line(err)
    assert "index 'nope' does not exist" in err


def test_dimension_mismatch_is_refused_before_indexing(cluster_env, faulty, tmp_path: Path, capsys) -> None:
    cluster = faulty()
    cluster_env(cluster.url)
    es = Elasticsearch(cluster.url)
    es.indices.create(index="small", mappings=index_mapping(8, "clip/demo"))
    write_demo_dataset(tmp_path / "demo", count=3, seed=5)
    status, _, err = run_cli(["index", str(tmp_path / "demo"), "--index", "small"], capsys)
    assert status == 2
    assert_one_clean_line(err)
    assert "8-dimensional" in err and "re-create" in err
    assert not any(r.endswith("/_bulk") for r in cluster.faults.requests)
    assert es.count(index="small")["count"] == 0


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_bulk_failures_are_retried_with_backoff(
    cluster_env, faulty, tmp_path: Path, capsys, monkeypatch, status: int
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(helpers._bulk, "sleep", waits.append)  # record the waits instead of waiting
    cluster = faulty(Faults(bulk_statuses=[status, status]))
    cluster_env(cluster.url)
    write_demo_dataset(tmp_path / "demo", count=12, seed=6)
    code, out, err = run_cli(["index", str(tmp_path / "demo"), "--index", "retry", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert (report["indexed"], report["skipped"]) == (12, [])
    assert sum(r.endswith("/_bulk") for r in cluster.faults.requests) == 3  # two refused, one accepted
    if status != 429:  # (a whole-request 429 is retried, with its own backoff, inside streaming_bulk)
        assert waits == [1, 2]  # backed off, longer each time


def test_permanent_document_failures_are_reported_not_dropped(cluster_env, faulty, tmp_path: Path, capsys) -> None:
    from helpers._scan import ImageRecord, scan

    write_demo_dataset(tmp_path / "demo", count=6, seed=7)
    records = sorted((r for r in scan(tmp_path / "demo") if isinstance(r, ImageRecord)), key=lambda r: r.filename)
    cluster = faulty(Faults(rejected_ids={records[2].sha256}))
    cluster_env(cluster.url)
    code, out, _ = run_cli(["index", str(tmp_path / "demo"), "--index", "partial", "--json"], capsys)
    assert code == 1
    report = json.loads(out.strip().splitlines()[-1])
    assert report["indexed"] == 5
    assert [Path(s["path"]).name for s in report["skipped"]] == [records[2].path.name]
    assert "document_parsing_exception" in report["skipped"][0]["reason"]
