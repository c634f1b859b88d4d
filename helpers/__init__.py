"""Semantic image search with CLIP (Roboflow Inference) and Elasticsearch kNN: what the
notebooks share, and the command line (`python -m helpers`).

The public API is the names below, each from the module of its step (config -> data -> clip
-> index -> search -> show); modules whose names start with `_` are machinery. Names load on
first use (all but three, see below), so `import helpers` stays fast and a command that never
embeds never imports Roboflow Inference.
"""

from __future__ import annotations

import importlib

# Functions named like their module: imported now, because importing a submodule later would
# set the package attribute (`helpers.connect`) to the module, hiding the function.
from helpers.classify import classify as classify
from helpers.connect import connect as connect
from helpers.evaluate import evaluate as evaluate

_EXPORTS = {
    "helpers._settings": ["Settings", "load_settings"],
    "helpers.connect": ["ClusterError", "describe"],
    "helpers._download": ["DatasetError", "DatasetUnavailable"],
    "helpers._weights": ["ModelUnavailable"],
    "helpers._remote": ["InferenceServerError"],
    "helpers.data": [
        "COCO_DIR",
        "DataChoice",
        "choose_data",
        "detections",
        "download_coco128",
        "read_records",
        "roboflow_calls",
    ],
    "helpers.clip": ["ClipEmbedder", "embedder_for", "load_clip", "prepare_inference"],
    "helpers.embedder": ["BatchEmbedder", "Embedder"],
    "helpers.index": [
        "IndexMismatch",
        "IndexReport",
        "check_index",
        "compare_mappings",
        "document",
        "ensure_index",
        "index_folder",
        "index_mapping",
    ],
    "helpers.standalone": ["ensure_tutorial_index"],
    "helpers.search": [
        "DocumentNotFound",
        "Hit",
        "format_hits",
        "knn_clause",
        "knn_search",
        "search_image",
        "search_mixed",
        "search_similar",
        "search_text",
        "stored_vector",
    ],
    "helpers.show": ["annotate_hit", "plot_hits"],
    "helpers.widget": ["SearchWidget", "search_widget"],
    "helpers.hybrid": ["hybrid_search"],
    "helpers.dedup": ["find_duplicates"],
    "helpers.evaluate": [
        "ANN_TYPES",
        "ann_curves",
        "ann_ids",
        "exact_query",
        "knn_recall",
        "object_share_by_class",
        "precision_by_class",
        "synthetic_index",
        "vector_memory",
    ],
    "helpers.synthetic": ["exact_neighbours", "spectrum_vectors"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted([*_MODULE_OF, "classify", "connect", "evaluate"])


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
