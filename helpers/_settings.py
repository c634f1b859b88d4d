"""Settings from the environment, a `.env` file, Colab secrets, or a prompt, in that order.

One `Settings` object carries everything the project reads from outside. Secrets are wrapped
in `Secret`, whose repr and str never show the value, and URLs lose their credentials
before they are shown.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_CLIP_MODEL = "clip/ViT-B-16"
DEFAULT_INDEX_NAME = "images"
# What every message about a missing or rejected Roboflow key says.
ROBOFLOW_KEY_HELP = (
    "set ROBOFLOW_API_KEY (a free Roboflow account gives one: https://app.roboflow.com, Settings > API Keys); "
    "both the CLIP model and the COCO 128 download need it"
)

SECRET_NAMES = ("ELASTIC_API_KEY", "ELASTIC_PASSWORD", "ROBOFLOW_API_KEY")
VARIABLE_NAMES = (
    "ELASTICSEARCH_URL",
    "ELASTIC_CLOUD_ID",
    "ELASTIC_API_KEY",
    "ELASTIC_USERNAME",
    "ELASTIC_PASSWORD",
    "ROBOFLOW_API_KEY",
    "CLIP_MODEL",
    "INDEX_NAME",
    "EMBEDDED_ES_PATH",
    "ELASTIC_CA_CERTS",
    "ELASTIC_VERIFY_CERTS",
    "EMBEDDING_CACHE_PATH",
    "INFERENCE_SERVER_URL",  # server mode (helpers._remote)
    "INFERENCE_SERVER_TIMEOUT",
)
DEFAULT_SERVER_TIMEOUT_S = 60.0  # one request of 8 images; a cold server also loads the model in it


class Secret:
    """A string that keeps its value out of reprs, logs and tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """`https://user:pass@host:9200` -> `https://***@host:9200`; other URLs unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


@dataclass(frozen=True)
class Settings:
    elasticsearch_url: str | None = None
    elastic_cloud_id: str | None = None
    elastic_api_key: Secret | None = None
    elastic_username: str | None = None
    elastic_password: Secret | None = None
    roboflow_api_key: Secret | None = None
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_model_explicit: bool = False  # CLIP_MODEL was set: an index built with another model is refused
    index_name: str = DEFAULT_INDEX_NAME
    embedded_es_path: Path = field(default_factory=lambda: DATA_DIR / "embedded-es")
    ca_certs: Path | None = None
    verify_certs: bool = True
    embedding_cache_path: Path = field(default_factory=lambda: DATA_DIR / "cache" / "embeddings.sqlite")
    inference_server_url: str | None = None  # server mode: embeddings come from this Inference server
    inference_server_timeout: float = DEFAULT_SERVER_TIMEOUT_S

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("elasticsearch_url", "inference_server_url") and value:
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def uses_cluster(self) -> bool:
        return bool(self.elasticsearch_url or self.elastic_cloud_id)

    def secret_values(self) -> list[str]:
        """Every configured secret, including a password inside the URL: for scrubbing text."""
        values = [s.reveal() for s in (self.elastic_api_key, self.elastic_password, self.roboflow_api_key) if s]
        for url in (self.elasticsearch_url, self.inference_server_url):
            userinfo = urlsplit(url).password if url else None
            if userinfo:
                values.append(userinfo)
        return [v for v in values if v]


def read_dotenv(path: Path) -> dict[str, str]:
    """Values from a `.env` file (KEY=VALUE lines), or nothing if there is no file."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def read_colab_secret(name: str) -> str | None:
    """A secret from Colab's secrets store, or None outside Colab or when not granted."""
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import userdata

        return userdata.get(name) or None
    except Exception:  # Colab raises its own types for "not found" / "no access"
        return None


def can_prompt() -> bool:
    """True only when a person can answer: never in CI, never in a kernel without stdin (nbval)."""
    if os.environ.get("CI"):
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        return bool(getattr(kernel, "_allow_stdin", False))
    return sys.stdin is not None and sys.stdin.isatty()


def lookup(
    name: str,
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    colab: Callable[[str], str | None] = read_colab_secret,
) -> str | None:
    """The value of `name` from the environment, else `.env`, else Colab secrets. A variable
    set to "" in the environment means "unset" and hides the others (to switch a cluster off)."""
    if name in environ:
        return environ[name] or None
    return dotenv.get(name) or colab(name)


def load_settings(
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
    colab: Callable[[str], str | None] = read_colab_secret,
    prompt: Callable[[str], str] | None = None,
) -> Settings:
    """Read every setting once. A cluster with no credentials is asked for an API key, but
    only when `can_prompt()`; otherwise the cluster is tried without one."""
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(dotenv_path if dotenv_path is not None else PROJECT_ROOT / ".env")
    values = {name: lookup(name, environ, dotenv, colab) for name in VARIABLE_NAMES}

    cloud_without_auth = values["ELASTIC_CLOUD_ID"] and not (values["ELASTIC_API_KEY"] or values["ELASTIC_PASSWORD"])
    if cloud_without_auth and (prompt is not None or can_prompt()):
        ask = prompt or getpass.getpass
        values["ELASTIC_API_KEY"] = ask("Elastic API key: ").strip() or None

    def secret(name: str) -> Secret | None:
        return Secret(values[name]) if values[name] else None

    def project_path(name: str, default: Path) -> Path:
        # Relative to the project, not the working directory: notebooks run from notebooks/.
        return PROJECT_ROOT / values[name] if values[name] else default

    return Settings(
        elasticsearch_url=values["ELASTICSEARCH_URL"],
        elastic_cloud_id=values["ELASTIC_CLOUD_ID"],
        elastic_api_key=secret("ELASTIC_API_KEY"),
        elastic_username=values["ELASTIC_USERNAME"],
        elastic_password=secret("ELASTIC_PASSWORD"),
        roboflow_api_key=secret("ROBOFLOW_API_KEY"),
        clip_model=values["CLIP_MODEL"] or DEFAULT_CLIP_MODEL,
        clip_model_explicit=bool(values["CLIP_MODEL"]),
        index_name=values["INDEX_NAME"] or DEFAULT_INDEX_NAME,
        embedded_es_path=project_path("EMBEDDED_ES_PATH", DATA_DIR / "embedded-es"),
        embedding_cache_path=project_path("EMBEDDING_CACHE_PATH", DATA_DIR / "cache" / "embeddings.sqlite"),
        ca_certs=Path(values["ELASTIC_CA_CERTS"]) if values["ELASTIC_CA_CERTS"] else None,
        # Only an explicit "false" turns verification off; anything else keeps it on.
        verify_certs=(values["ELASTIC_VERIFY_CERTS"] or "true").strip().lower() != "false",
        inference_server_url=(values["INFERENCE_SERVER_URL"] or "").rstrip("/") or None,
        inference_server_timeout=seconds(values["INFERENCE_SERVER_TIMEOUT"], DEFAULT_SERVER_TIMEOUT_S),
    )


def roboflow_key() -> str | None:
    """ROBOFLOW_API_KEY from the environment, .env or Colab secrets, for a caller without
    `Settings` at hand; never a prompt."""
    return lookup("ROBOFLOW_API_KEY", os.environ, read_dotenv(PROJECT_ROOT / ".env"))


def datasets_dir() -> Path:
    """Where data sets are downloaded and generated: `DATASETS_PATH` (relative to the project),
    else data/. Read from the environment or .env, not Colab secrets: it is a path, not a secret."""
    value = lookup("DATASETS_PATH", os.environ, read_dotenv(PROJECT_ROOT / ".env"), colab=lambda name: None)
    return PROJECT_ROOT / value if value else DATA_DIR


def scrub_secrets(text: str, secrets: list[str]) -> str:
    """Replace each of `secrets` in `text` with asterisks."""
    for value in secrets:
        if value:
            text = text.replace(value, "********")
    return text


def seconds(value: str | None, default: float) -> float:
    """A positive number of seconds, or `default` when unset or not one (a typo never means 0)."""
    try:
        parsed = float(value) if value else default
    except ValueError:
        return default
    return parsed if parsed > 0 else default


def scrub(text: str, settings: Settings) -> str:
    """Replace every configured secret in `text` with asterisks (for error messages)."""
    return scrub_secrets(text, settings.secret_values())
