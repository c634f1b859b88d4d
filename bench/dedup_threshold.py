"""How `dedup`'s default threshold was chosen: `python -m bench.dedup_threshold`.

For three demo sets of 128 images, generated with seeds the demo model never saw, plant 16
copies of each kind (re-encoded as JPEG quality 60; resized to 75 % at quality 75; resized to
50 % at quality 40), index everything into a fresh embedded engine with the demo model, and
run `find_duplicates` at several thresholds: how many planted copies are grouped with their
original, and how many pairs of distinct pictures are grouped together (false pairs).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from embedded_es import embedded_client
from helpers._offline.demo_data import plant_near_duplicates, write_demo_dataset
from helpers.clip import ClipEmbedder
from helpers.dedup import DEFAULT_THRESHOLD, find_duplicates
from helpers.index import index_folder

SEEDS = (4242, 7, 123456)
COPY_KINDS = {"re-encoded q60": (60, 1.0), "75 % size q75": (75, 0.75), "50 % size q40": (40, 0.5)}
THRESHOLDS = (0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99)
PER_KIND = 16


def measure(embedder: ClipEmbedder, seed: int, work: Path) -> dict[float, dict[str, int]]:
    data = write_demo_dataset(work / f"demo-{seed}", count=128, seed=seed)
    planted: dict[str, list[tuple[str, str]]] = {}
    for offset, (kind, (quality, scale)) in enumerate(COPY_KINDS.items()):
        # A tag per kind: two kinds may copy the same original.
        pairs = plant_near_duplicates(
            data, PER_KIND, quality=quality, scale=scale, seed=seed + offset, tag=f"copy{offset}"
        )
        planted[kind] = [(original.name, copy.name) for original, copy in pairs]
    es = embedded_client(work / f"engine-{seed}")
    index_folder(es, embedder, data, "dedup", progress=False)
    results = {}
    for threshold in THRESHOLDS:
        grouped = set()
        for group in find_duplicates(es, "dedup", threshold):
            names = sorted(Path(member["filename"]).name for member in group)
            grouped.update(itertools.combinations(names, 2))
        families: dict[str, set[str]] = {}  # an original and all its copies, of any kind
        for original, copy in (pair for pairs in planted.values() for pair in pairs):
            families.setdefault(original, {original}).add(copy)
        true_pairs = {pair for family in families.values() for pair in itertools.combinations(sorted(family), 2)}
        row = {kind: sum(tuple(sorted(p)) in grouped for p in pairs) for kind, pairs in planted.items()}
        row["false pairs"] = len(grouped - true_pairs)
        results[threshold] = row
    es.close()
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        embedder = ClipEmbedder("demo", cache_path=None)
        runs = [measure(embedder, seed, Path(folder)) for seed in SEEDS]
    kinds = [*COPY_KINDS, "false pairs"]
    print(f"copies found of {PER_KIND * len(SEEDS)} per kind, and false pairs, over seeds {SEEDS}")
    print(f"{'threshold':>10} " + " ".join(f"{kind:>15}" for kind in kinds))
    for threshold in THRESHOLDS:
        totals = [sum(run[threshold][kind] for run in runs) for kind in kinds]
        marker = "  <- default" if threshold == DEFAULT_THRESHOLD else ""
        print(f"{threshold:>10} " + " ".join(f"{total:>15}" for total in totals) + marker)


if __name__ == "__main__":
    main()
