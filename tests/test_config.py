"""Settings precedence, secret masking, and never prompting where nobody can answer."""

from pathlib import Path

import pytest

from helpers._settings import Secret, load_settings, redact_url, scrub


def no_colab(name: str) -> None:
    return None


def test_environment_wins_over_dotenv_and_colab(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("INDEX_NAME=from-dotenv\nCLIP_MODEL=demo\n")
    settings = load_settings(environ={"INDEX_NAME": "from-env"}, dotenv_path=dotenv, colab=lambda name: f"colab-{name}")
    assert settings.index_name == "from-env"
    assert settings.clip_model == "demo"  # .env fills what the environment lacks
    assert settings.elastic_username == "colab-ELASTIC_USERNAME"  # Colab fills the rest


def test_an_empty_environment_variable_hides_the_dotenv_value(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("ELASTICSEARCH_URL=https://cluster:9200\n")
    settings = load_settings(environ={"ELASTICSEARCH_URL": ""}, dotenv_path=dotenv, colab=no_colab)
    assert settings.elasticsearch_url is None and not settings.uses_cluster


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(environ={}, dotenv_path=tmp_path / "missing.env", colab=no_colab)
    assert settings.clip_model == "clip/ViT-B-16"
    assert settings.elasticsearch_url is None and not settings.uses_cluster
    assert settings.embedded_es_path.name == "embedded-es"


def test_relative_engine_path_is_relative_to_the_project(tmp_path: Path) -> None:
    from helpers._settings import PROJECT_ROOT

    settings = load_settings(environ={"EMBEDDED_ES_PATH": "data/x"}, dotenv_path=tmp_path / "none", colab=no_colab)
    assert settings.embedded_es_path == PROJECT_ROOT / "data" / "x"
    absolute = load_settings(environ={"EMBEDDED_ES_PATH": str(tmp_path)}, dotenv_path=tmp_path / "n", colab=no_colab)
    assert absolute.embedded_es_path == tmp_path


def test_secrets_never_show_in_repr_or_str(tmp_path: Path) -> None:
    environ = {
        "ELASTICSEARCH_URL": "https://elastic:hunter2-url@es.example:9200",
        "ELASTIC_API_KEY": "api-key-value",
        "ELASTIC_PASSWORD": "pw-value",
        "ROBOFLOW_API_KEY": "rf-value",
    }
    settings = load_settings(environ=environ, dotenv_path=tmp_path / "none", colab=no_colab)
    shown = repr(settings) + str(settings) + str(settings.elastic_api_key)
    for secret in ("hunter2-url", "api-key-value", "pw-value", "rf-value"):
        assert secret not in shown
    assert "es.example:9200" in shown
    assert settings.elastic_api_key.reveal() == "api-key-value"


def test_scrub_removes_every_configured_secret(tmp_path: Path) -> None:
    environ = {"ELASTICSEARCH_URL": "https://u:p4ss@h", "ROBOFLOW_API_KEY": "rf-123"}
    settings = load_settings(environ=environ, dotenv_path=tmp_path / "none", colab=no_colab)
    message = scrub("failed with https://u:p4ss@h and key rf-123", settings)
    assert "p4ss" not in message and "rf-123" not in message


def test_redact_url_keeps_host_and_path() -> None:
    assert redact_url("https://user:pw@host:9200/x") == "https://***@host:9200/x"
    assert redact_url("http://localhost:9200") == "http://localhost:9200"


def test_cloud_without_credentials_prompts_only_when_a_person_can_answer(tmp_path: Path, monkeypatch) -> None:
    environ = {"ELASTIC_CLOUD_ID": "deployment:abc"}
    asked = []
    settings = load_settings(
        environ=environ, dotenv_path=tmp_path / "none", colab=no_colab, prompt=lambda p: asked.append(p) or "typed"
    )
    assert asked and settings.elastic_api_key == Secret("typed")

    # Under CI (and under nbval, which has no stdin) getpass is never reached.
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr("getpass.getpass", lambda *a: pytest.fail("getpass reached"))
    settings = load_settings(environ=environ, dotenv_path=tmp_path / "none", colab=no_colab)
    assert settings.elastic_api_key is None


def test_colab_secrets_are_read_from_userdata(tmp_path: Path, monkeypatch) -> None:
    import sys
    import types

    userdata = types.SimpleNamespace(get=lambda name: {"ROBOFLOW_API_KEY": "from-colab"}.get(name))
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    settings = load_settings(environ={}, dotenv_path=tmp_path / "none")
    assert settings.roboflow_api_key.reveal() == "from-colab"


def test_an_explicit_clip_model_is_told_apart_from_the_default(tmp_path: Path) -> None:
    def explicit(environ: dict) -> bool:
        return load_settings(environ=environ, dotenv_path=tmp_path / "none", colab=no_colab).clip_model_explicit

    assert explicit({"CLIP_MODEL": "demo"}) and not explicit({}) and not explicit({"CLIP_MODEL": ""})


def test_datasets_path_is_relative_to_the_project(monkeypatch) -> None:
    from helpers._settings import DATA_DIR, PROJECT_ROOT, datasets_dir

    monkeypatch.setenv("DATASETS_PATH", "data/elsewhere")
    assert datasets_dir() == PROJECT_ROOT / "data" / "elsewhere"
    monkeypatch.setenv("DATASETS_PATH", "")
    assert datasets_dir() == DATA_DIR
