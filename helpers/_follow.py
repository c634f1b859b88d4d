"""The CLIP model an index was built with: its vectors answer only queries from that model.

`index` records the model in the mapping's `_meta.model`. Whatever reads an index (search,
classify, the notebooks after 01, `make demo` run again) uses that model unless CLIP_MODEL
is set; a CLIP_MODEL that disagrees is refused, as `index` refuses to mix models.
"""

from __future__ import annotations

from elasticsearch import Elasticsearch

from helpers._settings import Settings
from helpers.embedder import model_id_for
from helpers.index import IndexMismatch, existing_model


def recorded_model(es: Elasticsearch, index: str) -> str | None:
    """The model in the index's `_meta`, or None if there is no index or it does not say."""
    if not es.indices.exists(index=index):
        return None
    return existing_model(es, index)[1]


def model_for_index(es: Elasticsearch, index: str, settings: Settings) -> str:
    """The model to query `index` with: the recorded one, or the configured one for a new index."""
    configured = model_id_for(settings.clip_model)
    recorded = recorded_model(es, index)
    if recorded is None or recorded == configured:
        return configured
    if settings.clip_model_explicit:
        raise IndexMismatch(
            f"index {index!r} was built with CLIP model {recorded}, but CLIP_MODEL asks for {configured}: "
            f"unset CLIP_MODEL to use {recorded}, re-create the index (--recreate), or set another INDEX_NAME"
        )
    return recorded
