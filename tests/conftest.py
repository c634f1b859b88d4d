"""Shared fixtures. The embedder is built once per run: importing Inference takes seconds."""

from pathlib import Path

import pytest

from helpers.clip import ClipEmbedder


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> ClipEmbedder:
    return ClipEmbedder("demo", cache_path=tmp_path_factory.mktemp("cache") / "embeddings.sqlite")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(autouse=True)
def private_embedding_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that go through settings (the CLI) never write into the project's data/cache."""
    monkeypatch.setenv("EMBEDDING_CACHE_PATH", str(cache_dir / "embeddings.sqlite"))


@pytest.fixture
def offline_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI on the demo model and a fresh embedded engine; a cluster configured in the
    environment or .env is hidden (an empty variable hides .env). Returns the engine folder."""
    engine = tmp_path / "engine"
    monkeypatch.setenv("EMBEDDED_ES_PATH", str(engine))
    monkeypatch.setenv("CLIP_MODEL", "demo")
    monkeypatch.setenv("ELASTICSEARCH_URL", "")
    monkeypatch.setenv("ELASTIC_CLOUD_ID", "")
    monkeypatch.setenv("INFERENCE_SERVER_URL", "")  # a server in .env is hidden too
    return engine


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo data set generated with a seed the demo model never saw in training."""
    from helpers._offline.demo_data import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo"), count=128, seed=4242)
