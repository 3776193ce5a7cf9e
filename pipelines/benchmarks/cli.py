"""The `anomaly-vae benchmark ...` subcommands (see :mod:`pipelines.cli`): their options and handlers.

Each handler prints its benchmark's markdown (preceded by the run's conditions where speed is measured)
and imports the benchmark only when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.cli import command

if TYPE_CHECKING:
    from pipelines.cli import Commands


def show(text: str) -> int:
    """Print a benchmark's markdown, the command's output; exit code 0."""
    print(text)  # noqa: T201
    return 0


def add_benchmark(commands: Commands) -> None:
    bench = command(commands, "benchmark", "measure quality and speed side by side with baselines")
    kinds = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for add in (
        add_adbench,
        add_mixed,
        add_fidelity,
        add_speed,
        add_drift_benchmark,
        add_batch,
        add_calibration,
        add_serving,
        add_image_speed,
        add_image_drift,
        add_mnist,
        add_image_defects,
    ):
        add(kinds)


def add_adbench(kinds: Commands) -> None:
    adbench = command(kinds, "adbench", "ADBench protocol on every .npz in a folder")
    adbench.add_argument("--data-dir", required=True, type=Path, help="folder of ADBench .npz files")
    adbench.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the resampling and split")
    adbench.add_argument("--jobs", type=int, default=2, help="data sets run in parallel (one thread each)")
    adbench.add_argument("--output", type=Path, default=Path("docs/results"), help="folder for the CSV and table")
    adbench.add_argument("--subsample", type=int, help="small-data variant: first subsample each data set to N rows")
    adbench.add_argument("--params", type=json.loads, default={}, help="VAEDetector arguments as JSON")
    adbench.add_argument(
        "--compare-params", type=json.loads, help="also run VAEDetector with these arguments over --params (JSON)"
    )
    adbench.add_argument(
        "--setting",
        choices=("contaminated", "one-class"),
        default="contaminated",
        help="contaminated: the data README's protocol; one-class: train on half the normal rows, test on the "
        "other half and every anomaly (baselines default to IsolationForest, KNN, PyOD VAE)",
    )
    adbench.add_argument(
        "--anomalies",
        nargs="+",
        default=["real"],
        choices=("real", "synthetic-local", "synthetic-global", "synthetic-dependency", "synthetic-clustered"),
        help="the data sets' own anomalies, or ADBench-style synthetic ones made from their normal rows",
    )
    adbench.add_argument(
        "--group",
        choices=("tuning", "confirmation", "all"),
        default="all",
        help="run the tuning or the confirmation data sets only (fixed split, pipelines/benchmarks/groups.py)",
    )
    adbench.add_argument("--baseline", dest="baselines", action="append", help="run only these baselines (repeatable)")
    adbench.add_argument("--no-baselines", dest="baselines", action="store_const", const=[], help="run no baseline")
    adbench.set_defaults(handler=handle_adbench)


def handle_adbench(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.adbench import run_benchmark

    return show(
        run_benchmark(
            args.data_dir,
            args.seeds,
            args.output,
            jobs=args.jobs,
            group=args.group,
            subsample=args.subsample,
            setting=args.setting,
            anomalies=tuple(args.anomalies),
            params=args.params,
            baselines=args.baselines,
            compare=args.compare_params,
        )
    )


def add_mixed(kinds: Commands) -> None:
    summary = "categorical / boolean values that contradict the numeric columns (four dependence shapes)"
    mixed = command(kinds, "mixed", summary)
    mixed.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the data and the detectors")
    mixed.add_argument("--train-rows", type=int, default=5000, help="training records (normal and contradicting)")
    mixed.add_argument("--contamination", type=float, default=0.02, help="share of contradicting training records")
    mixed.add_argument("--test-rows", type=int, default=2000, help="normal test records")
    mixed.add_argument("--test-anomalies", type=int, default=400, help="contradicting test records")
    mixed.add_argument("--noise", type=float, default=0.0, help="noise on the rules' inputs (0: exact dependence)")
    mixed.add_argument("--params", type=json.loads, default={}, help="VAEDetector arguments as JSON")
    mixed.set_defaults(handler=handle_mixed)


def handle_mixed(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.mixed import run_mixed

    options = ("train_rows", "contamination", "test_rows", "test_anomalies", "noise", "params")
    return show(run_mixed(args.seeds, **{name: getattr(args, name) for name in options}))


def add_fidelity(kinds: Commands) -> None:
    summary = "samples at the defaults against the training rows (per-column KS, category shares)"
    fidelity = command(kinds, "fidelity", summary)
    fidelity.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the data, model and samples")
    fidelity.add_argument("--rows", type=int, default=5000, help="training rows of the mixed synthetic frame")
    fidelity.add_argument("--samples", type=int, default=5000, help="samples drawn from each model")
    fidelity.add_argument("--params", type=json.loads, default={}, help="VAEDetector arguments as JSON")
    fidelity.set_defaults(handler=handle_fidelity)


def handle_fidelity(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.sample_fidelity import run_fidelity

    return show(run_fidelity(args.seeds, rows=args.rows, n_samples=args.samples, params=args.params))


def add_speed(kinds: Commands) -> None:
    summary = "fit time (vs PyOD VAE), training and scoring rows/s on one thread, and on CUDA when present"
    speed = command(kinds, "speed", summary)
    speed.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the fastest is reported")
    speed.set_defaults(handler=handle_speed)


def handle_speed(args: argparse.Namespace) -> int:
    import torch

    from pipelines.benchmarks.speed import run_device_speed, run_speed
    from pipelines.provenance import run_conditions

    show(run_conditions(f"anomaly-vae benchmark speed --repeats {args.repeats}") + "\n")
    show(run_speed(repeats=args.repeats))
    if torch.cuda.is_available():
        show("\n" + run_device_speed("cuda"))
    return 0


def add_drift_benchmark(kinds: Commands) -> None:
    drift = command(kinds, "drift", "false alarms without drift and detection of planted shifts")
    drift.add_argument("--train-rows", type=int, nargs="+", default=[300, 3000], help="reference sizes")
    drift.add_argument("--windows", type=int, nargs="+", default=[40, 250, 1000], help="window sizes")
    drift.add_argument("--seeds", type=int, default=2, help="models per reference size (seeds 0..N-1)")
    drift.set_defaults(handler=handle_drift_benchmark)


def handle_drift_benchmark(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.drift import run_drift_benchmark

    return show(run_drift_benchmark(args.train_rows, args.windows, tuple(range(args.seeds))))


def add_image_drift(kinds: Commands) -> None:
    drift = command(kinds, "image-drift", "drift false alarms and planted shifts for image models (MNIST-5k)")
    drift.add_argument("--data", required=True, type=Path, help="mnist_5k.npz (arrays X: uint8 images, y: digits)")
    drift.add_argument("--digits", type=int, nargs="+", default=[3, 8], help="normal classes, one model each")
    drift.add_argument("--windows", type=int, nargs="+", default=[50, 200], help="window sizes")
    drift.add_argument("--trials", type=int, default=100, help="windows without drift per kind (a fifth per shift)")
    drift.set_defaults(handler=handle_image_drift)


def handle_image_drift(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.drift import run_image_drift_benchmark

    return show(run_image_drift_benchmark(str(args.data), args.digits, args.windows, args.trials))


def add_batch(kinds: Commands) -> None:
    batch = command(kinds, "batch", "batch scoring of 1M x 30 rows against the Parquet I/O floor")
    batch.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated input")
    batch.set_defaults(handler=handle_batch)


def handle_batch(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.batch import run_batch_speed
    from pipelines.provenance import run_conditions

    show(run_conditions(f"anomaly-vae benchmark batch --rows {args.rows}") + "\n")
    return show(run_batch_speed(n_rows=args.rows))


def add_calibration(kinds: Commands) -> None:
    summary = "realised false-positive rate of fitted models, split and out-of-bag calibration"
    calibration = command(kinds, "calibration", summary)
    calibration.add_argument(
        "--train-rows", type=int, nargs="+", default=[100, 300, 1000, 10_000], help="training sizes (models for each)"
    )
    calibration.add_argument("--seeds", type=int, default=100, help="models per training size (seeds 0..N-1)")
    calibration.add_argument("--fresh-rows", type=int, default=50_000, help="fresh normal rows scored per model")
    calibration.set_defaults(handler=handle_calibration)


def handle_calibration(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.calibration import run_calibration_benchmark
    from pipelines.provenance import run_conditions

    rows = " ".join(map(str, args.train_rows))
    rerun = f"anomaly-vae benchmark calibration --train-rows {rows} --seeds {args.seeds}"
    rerun += f" --fresh-rows {args.fresh_rows}"
    show(run_conditions(rerun) + "\n")
    return show(run_calibration_benchmark(args.train_rows, tuple(range(args.seeds)), fresh_rows=args.fresh_rows))


def add_serving(kinds: Commands) -> None:
    serving = command(kinds, "serving", "requests/s and latency against `mlflow models serve` (needs wrk)")
    serving.add_argument("--model", required=True, help="model URI or folder (the same model for both servers)")
    serving.add_argument("--seconds", type=int, default=15, help="wrk duration per server")
    serving.add_argument("--connections", type=int, default=8, help="wrk connections (requests in flight)")
    serving.add_argument("--workers", type=int, default=0, help="workers for the like-for-like rows (0: one per CPU)")
    serving.set_defaults(handler=handle_serving)


def handle_serving(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.serving import run_serving_speed

    return show(run_serving_speed(args.model, seconds=args.seconds, connections=args.connections, workers=args.workers))


def add_image_speed(kinds: Commands) -> None:
    speed = command(kinds, "image-speed", "image serving and batch images/s at 28 x 28 and 256 x 256 (needs wrk)")
    speed.add_argument("--data", required=True, type=Path, help="mnist_5k.npz (array X: uint8 28 x 28 images)")
    speed.add_argument("--seconds", type=int, default=15, help="wrk duration per server")
    speed.add_argument("--connections", type=int, default=4, help="wrk connections (requests in flight)")
    speed.add_argument("--per-request", type=int, default=8, help="images per POST")
    speed.add_argument("--batch-images", type=int, default=2000, help="PNG files of the 28 x 28 batch (a tenth at 256)")
    speed.set_defaults(handler=handle_image_speed)


def handle_image_speed(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.image_speed import run_image_speed

    return show(
        run_image_speed(
            args.data,
            seconds=args.seconds,
            connections=args.connections,
            per_request=args.per_request,
            batch_images=args.batch_images,
        )
    )


def add_digit_runs(parser: argparse.ArgumentParser, stem: str, picture: str) -> None:
    """The options of the benchmarks that run one-class digit tasks (``mnist``, ``image-defects``)."""
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)), help="normal classes, one at a time")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the split and the detectors")
    parser.add_argument("--jobs", type=int, default=2, help="(digit, seed) runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--output", type=Path, default=Path("docs/results"), help="folder for the CSV, table, picture")
    parser.add_argument("--stem", default=stem, help=f"file names in --output: STEM.csv, STEM.md, STEM_{picture}.png")
    parser.add_argument("--params", type=json.loads, default={}, help="ImageVAEDetector arguments as JSON")


def digit_runs(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments of :func:`add_digit_runs`' options, by the run functions' parameter names."""
    return {name: getattr(args, name) for name in ("output", "digits", "seeds", "jobs", "threads", "params", "stem")}


def add_mnist(kinds: Commands) -> None:
    mnist = command(kinds, "mnist", "one-class MNIST (each digit x seed) against baselines on raw pixels")
    mnist.add_argument(
        "--data", required=True, help="mnist_5k.npz (arrays X: uint8 images, y: digits), or sklearn:digits (8 x 8)"
    )
    add_digit_runs(mnist, "mnist", "grid")
    mnist.add_argument(
        "--compare-params", type=json.loads, help="also run ImageVAEDetector with these arguments (JSON), same splits"
    )
    mnist.add_argument("--no-baselines", dest="baselines", action="store_const", const=[], help="run no baseline")
    mnist.add_argument("--baseline", dest="baselines", action="append", help="run only these baselines (repeatable)")
    mnist.set_defaults(handler=handle_mnist)


def handle_mnist(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.mnist import run_mnist

    baselines = True if args.baselines is None else args.baselines
    return show(run_mnist(args.data, compare_params=args.compare_params, baselines=baselines, **digit_runs(args)))


def add_image_defects(kinds: Commands) -> None:
    summary = "do the anomaly maps point at planted defects (MNIST-5k test images, against PCA residuals)"
    defects = command(kinds, "image-defects", summary)
    defects.add_argument("--data", required=True, type=Path, help="mnist_5k.npz (arrays X: uint8 images, y: digits)")
    add_digit_runs(defects, "image_defects", "maps")
    defects.set_defaults(handler=handle_image_defects)


def handle_image_defects(args: argparse.Namespace) -> int:
    from pipelines.benchmarks.image_defects import run_image_defects

    return show(run_image_defects(args.data, **digit_runs(args)))
