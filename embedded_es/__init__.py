"""An in-process stand-in for the Elasticsearch REST subset this project uses (see DESIGN.md)."""

from embedded_es.node import embedded_client

__all__ = ["embedded_client"]
