"""The `anomaly-vae` command line."""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("anomaly_vae.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anomaly-vae", description="Variational autoencoder outlier detection.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train, calibrate, evaluate and register a model in MLflow")
    train.add_argument("--data", required=True, type=Path, help="CSV, Parquet (file or folder) or .npz data set")
    train.add_argument("--model-name", required=True, help="registered model name")
    train.add_argument("--alias", help="registry alias to point at the new version (e.g. champion)")
    train.add_argument("--label-column", help="0/1 column (1 = anomaly) used only for evaluation")
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

    score = commands.add_parser("score", help="score a CSV or Parquet file with a model")
    score.add_argument("--model", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or a folder")
    score.add_argument("--input", required=True, type=Path, help="CSV or Parquet (file or folder of parts)")
    score.add_argument("--output", required=True, type=Path, help="output file (.parquet or .csv)")
    score.add_argument(
        "--id-column",
        dest="id_columns",
        action="append",
        default=[],
        help="column copied to the output to join results back (repeatable)",
    )
    score.add_argument("--fpr", type=float, default=None, help="false-positive rate for is_outlier")
    score.add_argument(
        "--contributions",
        type=int,
        default=0,
        metavar="K",
        help="add the K columns that contributed most to each row's score",
    )
    score.add_argument("--chunk-rows", type=int, default=100_000, help="rows read and scored at a time")
    score.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.05,
        metavar="F",
        help="fail (exit 1, after writing every file) when more than this share of rows is rejected (default 0.05)",
    )

    sample = commands.add_parser("sample", help="draw synthetic records from a model; compare them with data")
    sample.add_argument("--model", required=True, help="model URI or folder")
    sample.add_argument("-n", type=int, required=True, help="number of records")
    sample.add_argument("--output", required=True, type=Path, help="output file (.csv or .parquet)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (same seed, same records)")
    sample.add_argument("--context", help='conditional model: JSON of context values, e.g. {"merchant": "web"}')
    sample.add_argument("--context-from", type=Path, help="conditional model: draw contexts from this data's rows")
    sample.add_argument("--compare", type=Path, help="data (CSV, Parquet) to compare the samples with")
    sample.add_argument("--report", type=Path, help="with --compare: the comparison plot (.png) and .json numbers")

    # `python -m serving` parses its own options (and --help, with defaults): pipelines never import serving
    commands.add_parser("serve", help="serve a model over HTTP (FastAPI + uvicorn)", add_help=False)

    drift = commands.add_parser("drift", help="drift of a data set against the model's training profile")
    drift.add_argument("--model", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or a folder")
    drift.add_argument("--data", required=True, type=Path, help="CSV, Parquet (file or folder) or .npz data set")
    drift.add_argument("--report", type=Path, help="write a self-contained HTML report with plots here")
    drift.add_argument("--output", type=Path, help="write the statistics as JSON here (default: print them)")
    drift.add_argument("--max-rows", type=int, default=200_000, help="sample larger data sets down to this")

    bench = commands.add_parser("benchmark", help="measure quality and speed side by side with baselines")
    kinds = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    adbench = kinds.add_parser("adbench", help="ADBench protocol on every .npz in a folder")
    adbench.add_argument("--data-dir", required=True, type=Path, help="folder of ADBench .npz files")
    adbench.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    adbench.add_argument("--jobs", type=int, default=2, help="data sets run in parallel (one thread each)")
    adbench.add_argument("--output", type=Path, default=Path("docs/results"), help="folder for the CSV and table")
    adbench.add_argument("--subsample", type=int, help="small-data variant: first subsample each data set to N rows")
    adbench.add_argument("--params", type=json.loads, default={}, help="VAEDetector arguments as JSON")
    adbench.add_argument("--no-baselines", dest="baselines", action="store_false", help="run only VAEDetector")
    speed = kinds.add_parser(
        "speed", help="fit time (vs PyOD VAE), training and scoring rows/s on one thread, and on CUDA when present"
    )
    speed.add_argument("--repeats", type=int, default=3)
    drift_bench = kinds.add_parser("drift", help="false alarms on i.i.d. windows and detection of planted shifts")
    drift_bench.add_argument("--rows", type=int, default=200_000, help="fresh i.i.d. rows per model")
    batch = kinds.add_parser("batch", help="batch scoring of 1M x 30 rows against the Parquet I/O floor")
    batch.add_argument("--rows", type=int, default=1_000_000)
    calibration = kinds.add_parser(
        "calibration", help="realised false-positive rate of fitted models against the conformal (Beta) spread"
    )
    calibration.add_argument("--train-rows", type=int, nargs="+", default=[1000, 3000, 30_000])
    calibration.add_argument("--seeds", type=int, default=20, help="models per training size (seeds 0..N-1)")
    calibration.add_argument("--fresh-rows", type=int, default=200_000, help="fresh normal rows scored per model")
    serving = kinds.add_parser("serving", help="requests/s and latency against `mlflow models serve` (needs wrk)")
    serving.add_argument("--model", required=True, help="model URI or folder (the same model for both servers)")
    serving.add_argument("--seconds", type=int, default=15, help="wrk duration per server")
    serving.add_argument("--connections", type=int, default=8)
    serving.add_argument("--workers", type=int, default=0, help="workers for the like-for-like rows (0: one per CPU)")
    mnist = kinds.add_parser("mnist", help="one-class MNIST (each digit x seed) against baselines on raw pixels")
    mnist.add_argument("--data", required=True, type=Path, help="mnist_5k.npz (arrays X: uint8 images, y: digits)")
    mnist.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    mnist.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    mnist.add_argument("--jobs", type=int, default=2, help="(digit, seed) runs in parallel (one thread each)")
    mnist.add_argument("--output", type=Path, default=Path("docs/results"), help="folder for the CSV, table, grid")
    mnist.add_argument("--params", type=json.loads, default={}, help="ImageVAEDetector arguments as JSON")
    mnist.add_argument("--no-baselines", dest="baselines", action="store_false", help="run only ImageVAEDetector")

    images = commands.add_parser("images", help="image models: fit one, draw inputs / reconstructions / maps")
    image_commands = images.add_subparsers(dest="images", required=True, metavar="ACTION")
    fit = image_commands.add_parser("fit", help="fit an ImageVAEDetector and save it to a folder")
    fit.add_argument("--data", required=True, type=Path, help="folder of PNG/JPEG files, .npz (array X) or .npy")
    fit.add_argument("--output", required=True, type=Path, help="model folder to write")
    fit.add_argument("--label", type=int, help="train only on images whose y in the .npz equals this")
    fit.add_argument("--params", type=json.loads, default={}, help="ImageVAEDetector arguments as JSON")
    grid = image_commands.add_parser("grid", help="PNG of inputs, reconstructions and anomaly-map overlays")
    grid.add_argument("--model", required=True, type=Path, help="model folder written by `images fit`")
    grid.add_argument("--input", required=True, type=Path, help="folder of images, .npz (array X) or .npy")
    grid.add_argument("--output", required=True, type=Path, help="PNG file to write")
    grid.add_argument("-n", type=int, default=8, help="number of images (columns)")
    grid.add_argument(
        "--select",
        choices=["most-anomalous", "least-anomalous", "first"],
        default="most-anomalous",
        help="which images: the highest default scores (default), the lowest, or the first n of the input",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, serve_arguments = parser.parse_known_args(argv)
    if args.command == "serve":  # a process of its own
        os.execv(sys.executable, [sys.executable, "-m", "serving", *serve_arguments])
    if serve_arguments:
        parser.error(f"unrecognized arguments: {' '.join(serve_arguments)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    # The interpreter's last garbage collections at exit walk every object that torch, pandas and sklearn
    # created (about half a second of a small job); frozen objects are skipped, and the process is ending.
    atexit.register(gc.freeze)
    try:
        if args.command == "train":
            from pipelines.config import load_settings
            from pipelines.train import train_and_register

            settings = load_settings(args.config, args.overrides)
            result = train_and_register(
                args.data,
                args.model_name,
                settings,
                alias=args.alias,
                label_column=args.label_column,
                output=args.output,
            )
            print(
                f"registered {result.model_name} version {result.version}"
                + (f" (alias {result.alias})" if result.alias else "")
                + f"; plots in {result.artifacts}"
            )
        elif args.command == "score":
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
                )
            except TooManyRejects as failure:  # the job ran and wrote its files: 1, not 2 (could not run)
                print(json.dumps(failure.manifest, indent=1))
                logger.error("error: %s", failure)
                return 1
            print(json.dumps(manifest, indent=1))
        elif args.command == "images":
            from pipelines.images import fit_images, grid_picture

            if args.images == "fit":
                print(fit_images(args.data, args.output, label=args.label, params=args.params))
            else:
                from anomaly_vae import ImageVAEDetector
                from anomaly_vae.image.data import read_images

                images, names = read_images(args.input)
                detector = ImageVAEDetector.load(args.model)
                chosen = grid_picture(detector, images, args.output, n=args.n, select=args.select)
                drawn = ", ".join(names[i] if names else str(i) for i in chosen)
                print(f"wrote {args.output}: {args.select} images, left to right: {drawn}")
        elif args.command == "drift":
            from pipelines.drift_report import alarm_summary, drift_file

            summary = drift_file(args.model, args.data, report=args.report, output=args.output, max_rows=args.max_rows)
            if args.output is None:
                print(json.dumps(summary, indent=1))
            verdict = "drift: " + alarm_summary(summary["alarms"]) if summary["drifted"] else "no drift"
            logger.info("%s (%d records)%s", verdict, summary["n_records"], f"; {args.report}" if args.report else "")
        elif args.command == "sample":
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
        elif args.benchmark == "adbench":
            from pipelines.adbench import run_benchmark

            table = run_benchmark(
                args.data_dir,
                args.seeds,
                args.output,
                jobs=args.jobs,
                subsample=args.subsample,
                params=args.params,
                baselines=args.baselines,
            )
            print(table)
        elif args.benchmark == "mnist":
            from pipelines.images import run_mnist

            print(
                run_mnist(
                    args.data,
                    args.output,
                    digits=args.digits,
                    seeds=args.seeds,
                    jobs=args.jobs,
                    params=args.params,
                    baselines=args.baselines,
                )
            )
        elif args.benchmark == "drift":
            from pipelines.drift_bench import run_drift_benchmark

            print(run_drift_benchmark(rows=args.rows))
        elif args.benchmark == "speed":
            import torch

            from pipelines.provenance import run_conditions
            from pipelines.speed import run_device_speed, run_speed

            print(run_conditions(f"anomaly-vae benchmark speed --repeats {args.repeats}") + "\n")
            print(run_speed(repeats=args.repeats))
            if torch.cuda.is_available():
                print("\n" + run_device_speed("cuda"))
        elif args.benchmark == "calibration":
            from pipelines.calibration_bench import run_calibration_benchmark
            from pipelines.provenance import run_conditions

            rows = " ".join(map(str, args.train_rows))
            rerun = f"anomaly-vae benchmark calibration --train-rows {rows} --seeds {args.seeds}"
            rerun += f" --fresh-rows {args.fresh_rows}"
            print(run_conditions(rerun) + "\n")
            print(run_calibration_benchmark(args.train_rows, tuple(range(args.seeds)), fresh_rows=args.fresh_rows))
        elif args.benchmark == "batch":
            from pipelines.provenance import run_conditions
            from pipelines.speed import run_batch_speed

            print(run_conditions(f"anomaly-vae benchmark batch --rows {args.rows}") + "\n")
            print(run_batch_speed(n_rows=args.rows))
        else:
            from pipelines.serving_speed import run_serving_speed

            print(
                run_serving_speed(args.model, seconds=args.seconds, connections=args.connections, workers=args.workers)
            )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        logger.error("error: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
