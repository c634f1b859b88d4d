"""The data: COCO 128 (the guide's data set), or offline the synthetic demo set, read as
image records and, for pictures of the labelled objects, as a supervision `DetectionDataset`.

The guide downloads COCO 128 with Roboflow's SDK (notebook 02 shows the call):

    Roboflow(api_key=KEY).workspace("team-roboflow").project("coco-128").version(2).download("yolov8")

Without a key, the public COCO 128 zip is used; both end in the same YOLO layout. One line
says where the data comes from. Without a key, a network that cannot be reached falls back
to the offline demo set; with a key, Roboflow was asked for, so every failure stops, in one
line that says what to do (`helpers._roboflow`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import supervision as sv

from helpers import _roboflow
from helpers._download import PUBLIC_ZIP_URL, DatasetUnavailable, download_public_zip, network_reason
from helpers._offline.demo_data import write_demo_dataset
from helpers._offline.demo_model import DEMO_MODEL_ID
from helpers._scan import ImageRecord, find_class_names, label_file_for, scan
from helpers._settings import PROJECT_ROOT, Settings, datasets_dir
from helpers.embedder import is_stand_in, model_id_for

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

COCO_DIR = datasets_dir() / "coco128"
DEMO_DATA_DIR = datasets_dir() / "demo"
COCO_QUERY = "coffee"
DEMO_QUERY = "a photo of a red circle"
OFFLINE_HINT = "offline? use the demo set instead: `python -m helpers demo-data --out data/demo` (or `make demo`)"


@dataclass(frozen=True)
class DataChoice:
    """The data set, the CLIP model that goes with it, and a text query that makes sense on it."""

    data_dir: Path
    model: str
    text_query: str

    @property
    def is_stand_in(self) -> bool:
        return is_stand_in(self.model)


def is_downloaded(dest: Path) -> bool:
    return (dest / "data.yaml").is_file() and any(dest.rglob("*.jpg"))


def shown(path: Path) -> Path:
    return path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path


def source_of(dest: Path) -> str:
    """Where a downloaded COCO 128 came from: Roboflow's export says so in its README."""
    return "Roboflow" if (dest / "README.roboflow.txt").is_file() else "the public zip"


def download_coco128(dest: Path, settings: Settings, url: str = PUBLIC_ZIP_URL) -> Path:
    """Fetch COCO 128 into `dest` unless it is already there, and say where it comes from.
    With a Roboflow key, the guide's way (`helpers._roboflow`); without one, the public zip.
    Every failure is a `DatasetError` with a one-line message; `DatasetUnavailable` (a
    subclass) when the network or the service is out of reach."""
    if is_downloaded(dest):
        print(f"Data: COCO 128 from {source_of(dest)}, downloaded before, in {shown(dest)}")
        return dest
    if settings.roboflow_api_key:
        print(f"Data: COCO 128 from Roboflow ({_roboflow.SOURCE}, YOLOv8 export), downloading into {shown(dest)}")
        return _roboflow.download(dest, settings.roboflow_api_key.reveal())
    print(f"Data: COCO 128 from the public zip (no ROBOFLOW_API_KEY), downloading into {shown(dest)}")
    try:
        return download_public_zip(dest, url)
    except OSError as error:  # requests' errors derive from it
        where = urlsplit(url).netloc
        raise DatasetUnavailable(
            f"could not download COCO 128 from {where} ({network_reason(error)}); {OFFLINE_HINT}"
        ) from None


@contextlib.contextmanager
def roboflow_calls(settings: Settings) -> Iterator[None]:
    """Around the roboflow SDK's calls written out (notebook 02): each request gets a deadline
    (the SDK sets none), and what the SDK raises (its errors hold the API's answer, which
    echoes the key) becomes one line with no key in it (`helpers._roboflow.sdk_calls`)."""
    key = settings.roboflow_api_key.reveal() if settings.roboflow_api_key else ""
    with _roboflow.sdk_calls(key, "downloading COCO 128"):
        yield


def demo_data() -> Path:
    """The demo set (128 images, seed 0), generated once: written beside its place, then renamed,
    so that a process reading it (another kernel, another test) never sees half a data set."""
    if not (DEMO_DATA_DIR / "data.yaml").is_file():
        DEMO_DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=DEMO_DATA_DIR.parent, prefix=".demo-") as scratch:
            written = write_demo_dataset(Path(scratch) / "demo", count=128, seed=0)
            try:
                written.rename(DEMO_DATA_DIR)
            except OSError:  # there already: another process's identical copy, or an interrupted old run's half
                if not (DEMO_DATA_DIR / "data.yaml").is_file():
                    shutil.rmtree(DEMO_DATA_DIR)
                    written.rename(DEMO_DATA_DIR)
    return DEMO_DATA_DIR


def choose_data(settings: Settings, es: Elasticsearch | None = None) -> DataChoice:
    """COCO 128 with the configured CLIP model, or, when the demo model is asked for or COCO 128
    is out of reach without a Roboflow key, the offline stand-ins: demo data with the demo model.
    With `es` (notebooks after 01, the demo run again), the model recorded in the index
    `settings.index_name` decides unless CLIP_MODEL is set (`helpers._follow`)."""
    from helpers._follow import model_for_index

    model = model_id_for(settings.clip_model)
    if es is not None and (recorded := model_for_index(es, settings.index_name, settings)) != model:
        print(f"Model: {recorded}, the one index {settings.index_name!r} was built with (CLIP_MODEL is not set)")
        model = recorded
    if model != DEMO_MODEL_ID:
        try:
            return DataChoice(download_coco128(COCO_DIR, settings), model, COCO_QUERY)
        except DatasetUnavailable as error:
            if settings.roboflow_api_key:  # Roboflow was asked for: no silent stand-in
                raise
            why = str(error).split(";")[0]  # the rest is the offline advice this line acts on
            print(f"Data: the synthetic demo set with the demo model, offline stand-ins ({why})")
            return DataChoice(demo_data(), DEMO_MODEL_ID, DEMO_QUERY)
    print("Data: the synthetic demo set (a stand-in for COCO 128).")
    return DataChoice(demo_data(), DEMO_MODEL_ID, DEMO_QUERY)


def read_records(data_dir: Path) -> list[ImageRecord]:
    """Every readable image below `data_dir` as a record: path, file name relative to the data
    set, sha256 (the document id), size, and class names from its YOLO label file. Files that
    cannot be read are left out here; `index_folder` lists them with a reason."""
    return [record for record in scan(data_dir) if isinstance(record, ImageRecord)]


def yolo_folders(data_dir: Path) -> list[tuple[Path, Path]]:
    """(images, labels) folder pairs of a YOLO data set: `train/images` beside `train/labels` in
    Roboflow's export, `images/train2017` beside `labels/train2017` in the public zip."""
    pairs = []
    for images in sorted(p for p in data_dir.rglob("images") if p.is_dir()):
        for folder in [images, *sorted(p for p in images.rglob("*") if p.is_dir())]:
            labels = label_file_for(folder / "x.jpg").parent
            if labels.is_dir() and labels != folder:
                pairs.append((folder, labels))
    return pairs


def detections(data_dir: Path) -> sv.DetectionDataset:
    """The labelled boxes of a YOLO data set (`data.yaml` with the class names), read by
    supervision as Roboflow's own notebooks do: `sv.DetectionDataset.from_yolo` for each
    images/labels folder pair. A folder without YOLO labels gives an empty data set."""
    data_yaml = data_dir / "data.yaml"
    pairs = yolo_folders(data_dir) if data_yaml.is_file() else []
    if not pairs:
        return sv.DetectionDataset(classes=find_class_names(data_dir), images=[], annotations={})
    parts = [
        sv.DetectionDataset.from_yolo(
            images_directory_path=str(images),
            annotations_directory_path=str(labels),
            data_yaml_path=str(data_yaml),
        )
        for images, labels in pairs
    ]
    return parts[0] if len(parts) == 1 else sv.DetectionDataset.merge(parts)
