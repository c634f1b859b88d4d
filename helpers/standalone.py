"""What a notebook needs when it runs alone: the tutorial index, built here if it is missing.

Colab opens every notebook's badge in a runtime of its own, where notebooks 01 and 02 never
ran; locally a learner may open 03 first. Notebooks 03, 04 and 07 then build the index with the
helper notebook 02 teaches (`index_folder`), saying so in one line. Run in order, the index is
there and this does nothing. An index that exists but is wrong for the notebook (another
model, or a mapping Elasticsearch guessed) is refused in one line that says what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpers._scan import find_class_names
from helpers.data import DataChoice, read_records
from helpers.index import IndexReport, check_index, index_folder
from helpers.objects import read_objects

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from helpers.embedder import BatchEmbedder

# Seconds `index_folder` takes per picture (or object crop) with nothing cached, on 2 CPU cores: the demo model
# (3 ms measured, rounded up for slower machines) and a ViT-B/16 CLIP (340 ms measured with
# random weights of the real architecture; Colab's CPU runtimes have 2 cores too).
SECONDS_PER_PICTURE = {"clip/demo": 0.005}
SECONDS_PER_PICTURE_CLIP = 0.35


def about(seconds: float) -> str:
    """A duration as a person says it: 'a few seconds', 'about 40 s', 'about 3 min'."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 90:
        return f"about {round(seconds, -1):.0f} s"
    return f"about {round(seconds / 60):.0f} min"


def data_name(choice: DataChoice) -> str:
    return "the synthetic demo set" if choice.is_stand_in else f"the data set in {choice.data_dir.name}/"


def ensure_tutorial_index(
    es: Elasticsearch, embedder: BatchEmbedder, choice: DataChoice, index: str
) -> IndexReport | None:
    """Check the index notebook 02 builds; build it when it is missing (returns the report),
    and say so in one line. An index that is there is checked and left as it is (None)."""
    if es.indices.exists(index=index):
        check_index(es, index, embedder.dim, embedder.model_id)
        return None
    records = read_records(choice.data_dir)
    names = find_class_names(choice.data_dir)
    objects = sum(len(read_objects(record, names)[0]) for record in records)
    per_picture = SECONDS_PER_PICTURE.get(embedder.model_id, SECONDS_PER_PICTURE_CLIP)
    print(
        f"Index {index!r} is missing, as in a runtime that has not run notebook 02 (on Colab every notebook runs "
        f"on its own machine): building it now from {data_name(choice)} ({len(records)} pictures and their "
        f"{objects} labelled objects, model {embedder.model_id}), {about((len(records) + objects) * per_picture)}."
    )
    return index_folder(es, embedder, choice.data_dir, index, progress=False)
