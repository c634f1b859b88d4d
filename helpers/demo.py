"""The main job end to end: data, embeddings, index, a text query and an image query.

With network: COCO 128 and the real CLIP model, and the guide's "coffee" query. Offline:
the demo data and the demo model (both stand-ins, and the output says so) with a prompt the
demo model knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers.clip import DEMO_MODEL_ID, model_id_for
from helpers.coco import DatasetUnavailable, download_coco128
from helpers.config import DATA_DIR, Settings
from helpers.demo_data import write_demo_dataset

COCO_DIR = DATA_DIR / "coco128"
DEMO_DATA_DIR = DATA_DIR / "demo"
COCO_QUERY = "coffee"
DEMO_QUERY = "a photo of a red circle"


@dataclass(frozen=True)
class Workspace:
    data_dir: Path
    model: str
    text_query: str

    @property
    def is_stand_in(self) -> bool:
        return self.model == DEMO_MODEL_ID


def demo_data() -> Path:
    """The demo set (128 images, seed 0), generated once."""
    if not (DEMO_DATA_DIR / "data.yaml").is_file():
        write_demo_dataset(DEMO_DATA_DIR, count=128, seed=0)
    return DEMO_DATA_DIR


def choose_workspace(settings: Settings) -> Workspace:
    """COCO 128 with the configured CLIP model, or, when COCO 128 cannot be downloaded or the
    demo model is asked for, the offline stand-ins: demo data with the demo model."""
    model = model_id_for(settings.clip_model)
    if model != DEMO_MODEL_ID:
        try:
            return Workspace(download_coco128(COCO_DIR, settings), model, COCO_QUERY)
        except DatasetUnavailable as error:
            print(f"COCO 128 is out of reach ({error}).")
            print("Switching to the offline stand-ins: the demo model and the synthetic demo data.")
    print("Data: the synthetic demo set (a stand-in for COCO 128).")
    return Workspace(demo_data(), DEMO_MODEL_ID, DEMO_QUERY)
