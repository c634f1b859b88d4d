"""Colab's secrets store, as the notebooks see it: `get(name)` returns the secret's value or
raises `SecretNotFoundError`. The rehearsal's secrets are environment variables named
`COLAB_SECRET_<NAME>` (none are set by default, as for a new Colab user)."""

import os


class SecretNotFoundError(Exception):
    pass


class NotebookAccessError(Exception):
    pass


def get(key: str) -> str:
    value = os.environ.get(f"COLAB_SECRET_{key}")
    if value is None:
        raise SecretNotFoundError(f"Secret {key} does not exist.")
    return value
