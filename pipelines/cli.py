"""The `anomaly-vae` command line: one subcommand per job and per benchmark, each with its handler.

``build_parser`` defines every subcommand and its options, each subcommand naming its handler
(``set_defaults(handler=...)``); ``main`` parses once and calls the handler. Handlers import what they
use when they run: mlflow, matplotlib and torch take seconds to import, most of a small job's time.
The ``benchmark`` subcommands are defined in :mod:`pipelines.benchmarks.cli`, the one module of that
package that this one imports.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

logger = logging.getLogger("anomaly_vae.cli")
MODEL_URI = "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or a folder"
# the errors a job raises for its input, arguments or environment: a message and exit code 2, no traceback
USAGE_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where there is one to show: not for required options, flags, or
    defaults that are None or empty."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.nargs == 0 or action.default in (None, argparse.SUPPRESS, [], {}):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomaly-vae", description="Variational autoencoder outlier detection.", formatter_class=HelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from pipelines.benchmarks.cli import add_benchmark  # it uses this module's helpers: imported once it is loaded

    for add in (add_train, add_score, add_sample, add_serve, add_drift, add_benchmark, add_images):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    # The interpreter's last garbage collections at exit walk every object that torch, pandas and sklearn
    # created (about half a second of a small job); frozen objects are skipped, and the process is ending.
    atexit.register(gc.freeze)
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return args.handler(args)
        except USAGE_ERRORS as error:
            logger.error("error: %s", error)
            return 2


def show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """A warning as one line of the command's output (``warning: ...``), without the file, line and source
    that Python's default shows."""
    logger.warning("warning: %s", " ".join(str(message).split()))


def command(commands: Commands, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line summary is also the description its own ``--help`` shows."""
    return commands.add_parser(name, help=summary, description=summary, formatter_class=HelpFormatter)


# ---------------------------------------------------------------------------------------------- train
def add_train(commands: Commands) -> None:
    train = command(commands, "train", "train, calibrate, evaluate and register a model in MLflow")
    train.add_argument(
        "--data",
        required=True,
        type=Path,
        help="a table (CSV, Parquet file or folder) or an image data set (folder of PNG/JPEG, MVTec-AD tree, "
        ".npz with array X, .npy)",
    )
    train.add_argument(
        "--kind",
        choices=["auto", "tabular", "image"],
        help="the kind of data and model (data.kind; auto: image data sets as listed under --data, else tabular)",
    )
    train.add_argument("--model-name", required=True, help="registered model name")
    train.add_argument("--alias", help="registry alias to point at the new version (e.g. champion)")
    train.add_argument(
        "--label-column",
        help="0/1 column (1 = anomaly), never a feature: a stratified part of the rows is held out to evaluate "
        "the model, which learns from the other rows labelled 0 (see --train-on)",
    )
    train.add_argument(
        "--train-on",
        choices=["normal", "all"],
        help="with --label-column: learn from the rows labelled 0 only (normal, the default: data.train_on) "
        "or from every training row, anomalies included (all: the labels serve the evaluation only)",
    )
    train.add_argument(
        "--drop-columns",
        dest="drop_columns",
        action="append",
        default=[],
        metavar="A,B",
        help="columns that are not features, e.g. identifiers: removed before fitting (comma-separated, "
        "repeatable; added to data.drop_columns)",
    )
    train.add_argument("--config", type=Path, help="YAML or TOML settings (sections: detector, data, evaluation)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set detector.max_steps=500 (repeatable)",
    )
    train.add_argument("--output", type=Path, help="folder for local copies of the run's plots")
    train.set_defaults(handler=handle_train)


def handle_train(args: argparse.Namespace) -> int:
    from pipelines.config import load_settings
    from pipelines.train import train_and_register

    drop = [name.strip() for names in args.drop_columns for name in names.split(",")]
    settings = load_settings(args.config, args.overrides, drop_columns=drop, train_on=args.train_on, kind=args.kind)
    result = train_and_register(
        args.data, args.model_name, settings, alias=args.alias, label_column=args.label_column, output=args.output
    )
    alias = f" (alias {result.alias})" if result.alias else ""
    print(f"registered {result.model_name} version {result.version}{alias}; plots in {result.artifacts}")
    return 0


# ---------------------------------------------------------------------------------------------- score
def add_score(commands: Commands) -> None:
    score = command(commands, "score", "score a CSV or Parquet file (tabular model) or images (image model)")
    score.add_argument("--model", required=True, help=MODEL_URI)
    score.add_argument(
        "--input",
        required=True,
        type=Path,
        help="tabular model: CSV or Parquet (file or folder of parts); image model: a folder of images, a .txt "
        "list of image paths, a CSV or Parquet table with --image-column, or a .npy / .npz stack",
    )
    score.add_argument("--output", required=True, type=Path, help="output file (.parquet or .csv)")
    score.add_argument(
        "--id-column",
        dest="id_columns",
        action="append",
        default=[],
        help="column copied to the output to join results back (repeatable; image tables: the first one names "
        "the images)",
    )
    score.add_argument("--image-column", help="image model, table input: the column of image bytes or paths")
    score.add_argument(
        "--maps", type=Path, metavar="DIR", help="image model: write an overlay PNG per flagged image to this folder"
    )
    score.add_argument(
        "--fpr", type=float, default=None, help="false-positive rate for is_outlier (default: the model's fpr)"
    )
    score.add_argument(
        "--contributions",
        type=int,
        default=0,
        metavar="K",
        help="add the K columns that contributed most to each row's score",
    )
    score.add_argument(
        "--chunk-rows", type=int, help="rows (images) read and scored at a time (default: 100000 rows, 256 images)"
    )
    score.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.05,
        metavar="F",
        help="fail (exit 1, after writing every file) when more than this share of rows is rejected",
    )
    score.set_defaults(handler=handle_score)


def handle_score(args: argparse.Namespace) -> int:
    from pipelines.batch import TooManyRejects, score_file

    try:
        manifest = score_file(
            args.model,
            args.input,
            args.output,
            id_columns=args.id_columns,
            fpr=args.fpr,
            contributions=args.contributions,
            chunk_rows=args.chunk_rows,
            max_reject_fraction=args.max_reject_fraction,
            image_column=args.image_column,
            maps=args.maps,
        )
    except TooManyRejects as failure:  # the job ran and wrote its files: 1, not 2 (could not run)
        print(json.dumps(failure.manifest, indent=1))
        logger.error("error: %s", failure)
        return 1
    print(json.dumps(manifest, indent=1))
    return 0


# --------------------------------------------------------------------------------------------- sample
def add_sample(commands: Commands) -> None:
    sample = command(commands, "sample", "draw synthetic records (or images) from a model; compare records with data")
    sample.add_argument("--model", required=True, help=MODEL_URI)
    sample.add_argument("-n", type=int, required=True, help="number of records (images)")
    sample.add_argument(
        "--output",
        required=True,
        type=Path,
        help="output file: .csv or .parquet; image model: a .png grid, or .npz (the images, and the grid beside it)",
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (same seed, same records)")
    sample.add_argument("--context", help='conditional model: JSON of context values, e.g. {"merchant": "web"}')
    sample.add_argument("--context-from", type=Path, help="conditional model: draw contexts from this data's rows")
    sample.add_argument("--compare", type=Path, help="data (CSV, Parquet) to compare the samples with")
    sample.add_argument("--report", type=Path, help="with --compare: the comparison plot (.png) and .json numbers")
    sample.set_defaults(handler=handle_sample)


def handle_sample(args: argparse.Namespace) -> int:
    from pipelines.sample import parse_context, sample_to_file

    if args.n < 1:
        raise ValueError(f"-n must be a positive integer, got: {args.n}")
    summary = sample_to_file(
        args.model,
        args.n,
        args.output,
        seed=args.seed,
        context=parse_context(args.context),
        context_from=args.context_from,
        compare=args.compare,
        report=args.report,
    )
    print(json.dumps(summary, indent=1, default=float))
    return 0


# ---------------------------------------------------------------------------------------------- serve
def add_serve(commands: Commands) -> None:
    # Every argument after `serve` (--help included) is for `python -m serving`, which parses it and shows
    # its defaults; pipelines never import serving. With no prefix character of its own, this parser reads
    # none of them as an option and takes them all, unparsed, as one list.
    serve = commands.add_parser(
        "serve", help="serve a model over HTTP (FastAPI + uvicorn); see serve --help", add_help=False, prefix_chars="\0"
    )
    serve.add_argument("arguments", nargs=argparse.REMAINDER)
    serve.set_defaults(handler=handle_serve)


def handle_serve(args: argparse.Namespace) -> NoReturn:
    os.execv(sys.executable, [sys.executable, "-m", "serving", *args.arguments])  # a process of its own


# ---------------------------------------------------------------------------------------------- drift
def add_drift(commands: Commands) -> None:
    drift = command(commands, "drift", "drift of a data set against the model's training profile")
    drift.add_argument("--model", required=True, help=MODEL_URI)
    drift.add_argument(
        "--data",
        required=True,
        type=Path,
        help="CSV, Parquet (file or folder) or .npz data set; image model: as score's --input",
    )
    drift.add_argument("--image-column", help="image model, table data: the column of image bytes or paths")
    drift.add_argument("--report", type=Path, help="write a self-contained HTML report with plots here")
    drift.add_argument("--output", type=Path, help="write the statistics as JSON here (default: print them)")
    drift.add_argument(
        "--max-rows", type=int, default=200_000, help="sample larger data sets (rows, images) down to this"
    )
    drift.set_defaults(handler=handle_drift)


def handle_drift(args: argparse.Namespace) -> int:
    from pipelines.drift_report import alarm_summary, drift_file

    summary = drift_file(
        args.model,
        args.data,
        report=args.report,
        output=args.output,
        max_rows=args.max_rows,
        image_column=args.image_column,
    )
    if args.output is None:
        print(json.dumps(summary, indent=1))
    verdict = "drift: " + alarm_summary(summary["alarms"]) if summary["drifted"] else "no drift"
    logger.info("%s (%d records)%s", verdict, summary["n_records"], f"; {args.report}" if args.report else "")
    return 0


# --------------------------------------------------------------------------------------------- images
def add_images(commands: Commands) -> None:
    images = command(commands, "images", "image models: fit one, draw inputs / reconstructions / maps")
    actions = images.add_subparsers(dest="images", required=True, metavar="ACTION")
    fit = command(actions, "fit", "fit an ImageVAEDetector and save it to a folder")
    fit.add_argument("--data", required=True, type=Path, help="folder of PNG/JPEG files, .npz (array X) or .npy")
    fit.add_argument("--output", required=True, type=Path, help="model folder to write")
    fit.add_argument("--label", type=int, help="train only on images whose y in the .npz equals this")
    fit.add_argument("--params", type=json.loads, default={}, help="ImageVAEDetector arguments as JSON")
    fit.set_defaults(handler=handle_images_fit)
    grid = command(actions, "grid", "PNG of inputs, reconstructions and anomaly-map overlays")
    grid.add_argument("--model", required=True, type=Path, help="model folder written by `images fit`")
    grid.add_argument("--input", required=True, type=Path, help="folder of images, .npz (array X) or .npy")
    grid.add_argument("--output", required=True, type=Path, help="PNG file to write")
    grid.add_argument("-n", type=int, default=8, help="number of images (columns)")
    grid.add_argument(
        "--select",
        choices=["most-anomalous", "least-anomalous", "first"],
        default="most-anomalous",
        help="which images: the highest default scores, the lowest, or the first n of the input",
    )
    grid.set_defaults(handler=handle_images_grid)


def handle_images_fit(args: argparse.Namespace) -> int:
    from pipelines.images import fit_images

    print(fit_images(args.data, args.output, label=args.label, params=args.params))
    return 0


def handle_images_grid(args: argparse.Namespace) -> int:
    from anomaly_vae import ImageVAEDetector
    from anomaly_vae.image.data import read_images
    from pipelines.images import grid_picture

    images, names = read_images(args.input)
    detector = ImageVAEDetector.load(args.model)
    chosen = grid_picture(detector, images, args.output, n=args.n, select=args.select)
    drawn = ", ".join(names[i] if names else str(i) for i in chosen)
    print(f"wrote {args.output}: {args.select} images, left to right: {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
