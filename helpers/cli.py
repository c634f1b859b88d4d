"""Command line: `python -m helpers COMMAND ...`; `python -m helpers --help` lists them.

Human-readable output by default; with `--json` the last line of stdout is one JSON value.
Exit status: 0 success, 1 partial (something was skipped), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from helpers._settings import DATA_DIR, datasets_dir, load_settings, scrub
from helpers.dedup import DEFAULT_THRESHOLD
from helpers.index import INDEX_OPTIONS


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def emit(result: object, as_json: bool, human: str) -> None:
    print(json.dumps(result) if as_json else human)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from helpers._offline.demo_data import write_demo_dataset

    if args.count < 1:
        raise UsageError("--count must be at least 1")
    out = write_demo_dataset(Path(args.out), count=args.count, seed=args.seed)
    print(f"wrote {args.count} demo images (synthetic stand-in for COCO 128, seed {args.seed}) to {out}")
    return 0


def cmd_train_demo_model(args: argparse.Namespace) -> int:
    from helpers._offline.train import train_and_export

    train_and_export(Path(args.out), count=args.images, epochs=args.epochs)
    return 0


def cmd_download_coco(args: argparse.Namespace) -> int:
    from helpers.data import download_coco128

    out = download_coco128(Path(args.out), load_settings())
    print(f"COCO 128 is in {out}")
    return 0


def load_records(data: Path) -> list:
    from helpers._scan import ImageRecord, scan

    if not data.exists():
        raise UsageError(f"{data} does not exist: pass a folder of images (e.g. one made by `demo-data`)")
    records = [r for r in scan(data) if isinstance(r, ImageRecord)]
    if not records:
        raise UsageError(f"no readable images under {data}")
    return records


def cmd_eval(args: argparse.Namespace) -> int:
    from helpers.clip import embedder_for
    from helpers.evaluate import evaluate

    records = load_records(Path(args.data))
    embedder = embedder_for(load_settings(), args.model)
    result = evaluate(embedder, records, k=args.k)
    k = args.k
    human = (
        f"{result['model']} on {result['images']} images ({result['classes_scored']} classes scored):\n"
        f"  text-to-image precision@{k}:  {result[f'text_to_image_precision_at_{k}']:.3f}\n"
        f"  image-to-image precision@{k}: {result[f'image_to_image_precision_at_{k}']:.3f}"
    )
    emit(result, args.json, human)
    return 0


def print_hits(title: str, hits: list) -> None:
    from helpers.search import format_hits

    print(f"\n{title}\n{format_hits(hits)}")


def cmd_index(args: argparse.Namespace) -> int:
    from helpers.clip import embedder_for
    from helpers.connect import connect
    from helpers.index import index_folder, index_for_model

    root = Path(args.path)
    if not root.exists():
        raise UsageError(f"{root} does not exist: pass a folder of images or one image file")
    settings = load_settings()
    index = args.index or settings.index_name
    es = connect(settings, quiet=args.json)
    options = {"recreate": args.recreate, "progress": not args.json, "index_options": args.index_options}
    if args.model:  # another model: a new index, then the alias swapped to it (never no index)
        report = index_for_model(es, embedder_for(settings, args.model), root, index, **options)
    else:
        report = index_folder(es, embedder_for(settings), root, index, **options)
    where = f"index {report.index!r}" + (f" (alias {index!r})" if report.index != index else "")
    lines = [f"{report.indexed} images in {where} ({report.new} new), {len(report.skipped)} skipped"]
    lines += [f"  skipped {s.path}: {s.reason}" for s in report.skipped]
    if report.objects or report.skipped_objects:
        lines.append(f"{report.objects} labelled objects indexed, {len(report.skipped_objects)} left out")
    lines += [f"  left out of {s.path}: {s.reason}" for s in report.skipped_objects]
    emit(report.as_json(), args.json, "\n".join(lines))
    return 1 if report.skipped else 0


def checked_date(value: str | None, flag: str) -> str | None:
    """A date filter's value, refused here in one line rather than by the cluster."""
    from helpers.search import is_date

    if value is None or is_date(value):
        return value
    raise UsageError(f"{flag} {value!r} is not a date: use 2024-05-01, 2024-05-01T12:00:00Z or now-7d")


def check_picture(image: str) -> None:
    from helpers._fetch import is_url

    if not is_url(image) and not Path(image).is_file():
        raise UsageError(f"{image} is not a file or an http(s) URL")
    if not is_url(image):  # a file that is no picture fails here in one line, not in the model's batch
        from helpers._images import load_rgb

        try:
            load_rgb(image)
        except (OSError, ValueError, SyntaxError) as error:  # what PIL and the size check raise
            raise UsageError(f"{image} is not a picture that can be read ({error})") from None


def search_options(args: argparse.Namespace) -> dict:
    """The query's options, every flag checked before anything connects or loads a model."""
    if args.text is None and args.image is None and args.similar_to is None:
        raise UsageError("give a query: --text, --image or --similar-to (--text combines with either of the others)")
    if args.image:
        check_picture(args.image)
    if args.hybrid and (args.text is None or args.image or args.similar_to):
        raise UsageError("--hybrid works on --text alone: it matches the words in labels and file names too")
    if args.data and not args.out:
        raise UsageError("--data says where the pictures are for --out's grid: give --out PNG too")
    if args.hybrid and args.objects:
        raise UsageError("--objects and --hybrid do not combine: --hybrid matches a picture's words, not its objects")
    for flag, weight in (("--text-weight", args.text_weight), ("--word-weight", args.word_weight)):
        if not 0 <= weight <= 1:
            raise UsageError(f"{flag} must be between 0 and 1")
    if not 1 <= args.k <= 10_000:
        raise UsageError("--k must be between 1 and 10000")
    if args.page < 1 or args.page * args.k > 10_000:
        raise UsageError("--page must be at least 1, and --page × --k at most 10000")
    return {
        "k": args.k,
        "page": args.page,
        "labels": args.label,
        "min_similarity": args.min_score,
        "since": checked_date(args.since, "--since"),
        "until": checked_date(args.until, "--until"),
        "objects": args.objects,
    }


def run_query(args: argparse.Namespace, options: dict, es, settings, index: str) -> tuple[list, str]:
    """The hits and a title for whichever query the flags describe."""
    from helpers import hybrid, search
    from helpers._follow import model_for_index
    from helpers.clip import embedder_for

    if args.text is None and args.image is None:
        return search.search_similar(es, index, args.similar_to, **options), f"more like {args.similar_to[:12]}"
    embedder = embedder_for(settings, model_for_index(es, index, settings))
    if args.hybrid:
        hits, fusion = hybrid.hybrid_search(
            es, embedder, index, args.text, fusion=args.fusion, word_weight=args.word_weight, **options
        )
        return hits, f"hybrid ({fusion} fusion): {args.text!r}"
    if args.text is not None and (args.image or args.similar_to):
        picture = args.image or f"id {args.similar_to[:12]}"
        hits = search.search_mixed(
            es, embedder, index, args.text, args.image, args.similar_to, args.text_weight, **options
        )
        return hits, f"{picture} + {args.text!r} (text weight {args.text_weight})"
    if args.text is not None:
        return search.search_text(es, embedder, index, args.text, **options), f"text: {args.text!r}"
    return search.search_image(es, embedder, index, args.image, **options), f"image: {args.image}"


def cmd_search(args: argparse.Namespace) -> int:
    from helpers.connect import connect

    options = search_options(args)
    settings = load_settings()
    index = args.index or settings.index_name
    es = connect(settings, quiet=args.json)
    if not es.indices.exists(index=index):  # before a model loads (or downloads) for nothing
        raise UsageError(f"index {index!r} does not exist: index some images first (python -m helpers index PATH)")
    if args.objects:
        check_objects(es, index)
    hits, title = run_query(args, options, es, settings, index)
    title = f"{title}, by object" if args.objects else title
    if args.json:
        emit([hit.as_json() for hit in hits], True, "")
    else:
        first = (args.page - 1) * args.k + 1
        print_hits(f"{title} (hits {first} to {first + args.k - 1})" if args.page > 1 else title, hits)
        if args.objects and not hits:
            print("  (by object, only labelled objects are searched: a folder without YOLO labels has none)")
    if args.out:
        write_grid(Path(args.out), {title: hits}, picture_folder(args.data))
    return 0


def check_objects(es, index: str) -> None:
    """An index built before object-level search has no `objects` field: say what to do."""
    from helpers.index import mapping_of
    from helpers.objects import OBJECTS_FIELD

    if OBJECTS_FIELD not in mapping_of(es, index).get("properties", {}):
        raise UsageError(
            f"index {index!r} has no objects (it was built before object-level search): re-index it with "
            "`python -m helpers index PATH --recreate`"
        )


def picture_folder(given: str | None) -> Path:
    """Where the hits' files are: `--data`, else the demo's data set (COCO 128 once downloaded,
    else the demo set)."""
    from helpers.data import COCO_DIR, demo_data, is_downloaded

    if given is not None:
        if not Path(given).is_dir():
            raise UsageError(f"--data {given} is not a folder: give the folder that was indexed")
        return Path(given)
    return COCO_DIR if is_downloaded(COCO_DIR) else demo_data()


def write_grid(out: Path, rows: dict, data_dir: Path, title: str | None = None) -> None:
    """The hits as a PNG grid, one row per query: labelled objects drawn on picture-level
    hits, only the object that matched on object-level ones."""
    from helpers.data import detections
    from helpers.show import plot_hits

    figure = plot_hits(rows, data_dir, boxes=detections(data_dir))
    if title:
        figure.suptitle(title, fontsize=9, y=1.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100, bbox_inches="tight")
    shown = out.resolve().relative_to(Path.cwd()) if out.resolve().is_relative_to(Path.cwd()) else out
    print(f"\nResult grid (PNG): {shown}")


def cmd_dedup(args: argparse.Namespace) -> int:
    from helpers.connect import connect
    from helpers.dedup import find_duplicates

    if not 0 < args.threshold <= 1:
        raise UsageError("--threshold must be a cosine similarity in (0, 1], e.g. 0.975")
    settings = load_settings()
    index = args.index or settings.index_name
    groups = find_duplicates(connect(settings, quiet=args.json), index, args.threshold)
    lines = [f"{len(groups)} group(s) of near-duplicates in index {index!r} (cosine >= {args.threshold})"]
    for number, group in enumerate(groups, 1):
        lines += [f"  group {number}:"] + [f"    {m['filename']}  id={m['id'][:12]}" for m in group]
    emit(groups, args.json, "\n".join(lines))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from helpers._follow import model_for_index
    from helpers.classify import classify, parse_labels
    from helpers.clip import embedder_for
    from helpers.connect import connect

    try:
        labels = parse_labels(args.labels)
    except ValueError as error:
        raise UsageError(str(error)) from None
    check_picture(args.image)
    settings = load_settings()
    model = model_for_index(connect(settings, quiet=True), settings.index_name, settings)  # the index's, if any
    ranked = classify(embedder_for(settings, model), args.image, labels)
    human = "\n".join(f"  {r['probability']:7.2%}  {r['score']:.4f}  {r['label']}" for r in ranked)
    emit(ranked, args.json, f"{args.image}: labels by CLIP similarity (probability, cosine)\n{human}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from helpers import search
    from helpers._scan import find_images
    from helpers.clip import embedder_for
    from helpers.connect import connect
    from helpers.data import choose_data
    from helpers.index import index_folder

    settings = load_settings()
    es = connect(settings)
    choice = choose_data(settings, None if args.recreate else es)  # run again: the index's model
    embedder = embedder_for(settings, choice.model)
    report = index_folder(es, embedder, choice.data_dir, settings.index_name, recreate=args.recreate)
    skipped = f"{len(report.skipped)} skipped; {report.objects} labelled objects indexed"
    print(f"{report.indexed} images in index {settings.index_name!r} ({report.new} new, {skipped})")

    text_hits = search.search_text(es, embedder, settings.index_name, choice.text_query, k=5)
    print_hits(f"Text query {choice.text_query!r}:", text_hits)
    object_hits = search.search_text(es, embedder, settings.index_name, choice.text_query, k=5, objects=True)
    print_hits(f"Text query {choice.text_query!r}, by object (the box that matched):", object_hits)
    query_image = find_images(choice.data_dir)[0]
    image_hits = search.search_image(es, embedder, settings.index_name, query_image, k=5)
    print_hits(
        f"Image query {query_image.relative_to(choice.data_dir)} (the same picture should come first):", image_hits
    )
    rows = {
        f"text: {choice.text_query!r}": text_hits,
        f"objects: {choice.text_query!r}": object_hits,
        f"image: {query_image.name}": image_hits,
    }
    stand_in = "demo model and demo data (offline stand-ins, not CLIP on COCO 128)" if choice.is_stand_in else None
    write_grid(Path(args.out), rows, choice.data_dir, stand_in)
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
    p.add_argument("--out", default=str(datasets_dir() / "coco128"))
    p.set_defaults(run=cmd_download_coco)

    p = sub.add_parser("eval", help="precision@k of text-to-image and image-to-image retrieval")
    p.add_argument("--data", required=True, help="labelled data set folder")
    p.add_argument("--model", help="CLIP model (default: CLIP_MODEL or clip/ViT-B-16); `demo` offline")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("index", help="embed a folder of images and bulk-index it")
    p.add_argument("path", help="folder of images (searched recursively) or one image")
    p.add_argument("--index", help="index name (default: INDEX_NAME or 'images')")
    p.add_argument("--recreate", action="store_true", help="delete and re-create the index first")
    p.add_argument(
        "--model",
        help="CLIP model to index with; if the index holds another model's vectors, a new index is built "
        "and the alias INDEX_NAME swapped to it",
    )
    p.add_argument(
        "--index-options",
        choices=INDEX_OPTIONS,
        default="hnsw",
        help="HNSW variant for a new index: hnsw (default), or int8_hnsw / bbq_hnsw for 4x / 32x less memory",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("search", help="kNN search by text, image, an indexed image, or text with a picture")
    p.add_argument("--text", help="a text prompt (with --image or --similar-to: steers that picture)")
    picture = p.add_mutually_exclusive_group()
    picture.add_argument("--image", help="an image file or an http(s) URL")
    picture.add_argument("--similar-to", metavar="ID", help="an indexed image's id: more like this")
    p.add_argument("--text-weight", type=float, default=0.5, help="text's share of a text + picture query (0.5)")
    p.add_argument("--hybrid", action="store_true", help="also match --text's words in labels and file names")
    p.add_argument("--fusion", choices=("auto", "rrf", "linear"), default="auto", help="how --hybrid fuses (auto)")
    p.add_argument("--word-weight", type=float, default=0.1, help="--hybrid linear fusion: weight of BM25 (0.1)")
    p.add_argument("--k", type=int, default=10, help="number of hits per page (default 10)")
    p.add_argument("--page", type=int, default=1, help="page of hits: 2 gives hits k+1 to 2k (default 1)")
    p.add_argument("--label", action="append", help="only images with this label (repeat: all of them)")
    p.add_argument("--since", help="only images uploaded at or after this date (2024-05-01, now-7d)")
    p.add_argument("--until", help="only images uploaded before this date")
    p.add_argument("--min-score", type=float, help="similarity floor (cosine): fewer hits when nothing is close")
    p.add_argument("--objects", action="store_true", help="search the pictures' labelled objects; print the box")
    p.add_argument("--out", help="also write the hits as a PNG grid (object-level: only the matching box drawn)")
    p.add_argument("--data", help="with --out: the folder that was indexed (default: the demo's data set)")
    p.add_argument("--index", help="index name (default: INDEX_NAME or 'images')")
    p.add_argument("--json", action="store_true", help="print a JSON list of hits as the last line")
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("dedup", help="groups of near-duplicate images (re-encoded, resized copies)")
    p.add_argument("--index", help="index name (default: INDEX_NAME or 'images')")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"cosine (default {DEFAULT_THRESHOLD})")
    p.add_argument("--json", action="store_true", help="print a JSON list of groups as the last line")
    p.set_defaults(run=cmd_dedup)

    p = sub.add_parser("classify", help="zero-shot labels: rank candidate labels for an image")
    p.add_argument("image", help="an image file or an http(s) URL")
    p.add_argument("--labels", required=True, help='comma-separated candidates, e.g. "cat,dog,coffee cup"')
    p.add_argument("--json", action="store_true", help="print a JSON list of {label, score, probability}")
    p.set_defaults(run=cmd_classify)

    p = sub.add_parser("demo", help="the main job: data, embeddings, index, a text and an image query")
    p.add_argument("--out", default=str(DATA_DIR / "results" / "demo.png"), help="where to write the result grid")
    p.add_argument(
        "--recreate", action="store_true", help="re-create the index first (e.g. it holds another model's vectors)"
    )
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from helpers._download import DatasetError
    from helpers._fetch import ImageFetchError
    from helpers._remote import InferenceServerError  # server mode's one-line failures
    from helpers._weights import ModelUnavailable
    from helpers.connect import ClusterError, explain
    from helpers.index import IndexMismatch
    from helpers.search import DocumentNotFound

    args = build_parser().parse_args(argv)
    settings = load_settings()
    known = (UsageError, DatasetError, ModelUnavailable, IndexMismatch, DocumentNotFound, ImageFetchError, ClusterError)
    known += (InferenceServerError,)
    try:
        return args.run(args)
    except known as error:
        message = str(error)
    except (ApiError, TransportError) as error:
        message = explain(error, settings) or type(error).__name__
    print(f"error: {scrub(message, settings)}", file=sys.stderr)
    return 2
