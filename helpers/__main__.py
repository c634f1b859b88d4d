"""Command line: `python -m helpers COMMAND ...`; `python -m helpers --help` lists them.

Human-readable output by default; with `--json` the last line of stdout is one JSON value.
Exit status: 0 success, 1 partial (something was skipped), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from helpers.config import DATA_DIR, load_settings, scrub


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def emit(result: object, as_json: bool, human: str) -> None:
    print(json.dumps(result) if as_json else human)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from helpers.demo_data import write_demo_dataset

    if args.count < 1:
        raise UsageError("--count must be at least 1")
    out = write_demo_dataset(Path(args.out), count=args.count, seed=args.seed)
    print(f"wrote {args.count} demo images (synthetic stand-in for COCO 128, seed {args.seed}) to {out}")
    return 0


def cmd_train_demo_model(args: argparse.Namespace) -> int:
    from helpers.train_demo_model import train_and_export

    train_and_export(Path(args.out), count=args.images, epochs=args.epochs)
    return 0


def cmd_download_coco(args: argparse.Namespace) -> int:
    from helpers.coco import download_coco128

    out = download_coco128(Path(args.out), load_settings())
    print(f"COCO 128 is in {out}")
    return 0


def load_records(data: Path) -> list:
    from helpers.dataset import ImageRecord, scan

    if not data.exists():
        raise UsageError(f"{data} does not exist: pass a folder of images (e.g. one made by `demo-data`)")
    records = [r for r in scan(data) if isinstance(r, ImageRecord)]
    if not records:
        raise UsageError(f"no readable images under {data}")
    return records


def cmd_eval(args: argparse.Namespace) -> int:
    from helpers.clip import ClipEmbedder
    from helpers.evaluate import evaluate

    records = load_records(Path(args.data))
    embedder = ClipEmbedder(args.model or load_settings().clip_model)
    result = evaluate(embedder, records, k=args.k)
    k = args.k
    human = (
        f"{result['model']} on {result['images']} images ({result['classes_scored']} classes scored):\n"
        f"  text-to-image precision@{k}:  {result[f'text_to_image_precision_at_{k}']:.3f}\n"
        f"  image-to-image precision@{k}: {result[f'image_to_image_precision_at_{k}']:.3f}"
    )
    emit(result, args.json, human)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-data", help="write the synthetic demo data set (COCO 128 layout)")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--count", type=int, default=128, help="number of images (default 128)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=cmd_demo_data)

    p = sub.add_parser("train-demo-model", help="train the offline demo CLIP and export it as ONNX")
    p.add_argument("--out", default=str(DATA_DIR / "demo_model"))
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=15)
    p.set_defaults(run=cmd_train_demo_model)

    p = sub.add_parser("download-coco", help="download COCO 128 (Roboflow with a key, public zip without)")
    p.add_argument("--out", default=str(DATA_DIR / "coco128"))
    p.set_defaults(run=cmd_download_coco)

    p = sub.add_parser("eval", help="precision@k of text-to-image and image-to-image retrieval")
    p.add_argument("--data", required=True, help="labelled data set folder")
    p.add_argument("--model", help="CLIP model (default: CLIP_MODEL or clip/ViT-B-16); `demo` offline")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(run=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    from helpers.coco import DatasetUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, DatasetUnavailable) as error:
        print(f"error: {scrub(str(error), load_settings())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
