"""The quality benchmarks' command-line forms parse to what their handlers pass on."""

from pathlib import Path

import pytest

from pipelines.cli import build_parser


def test_adbench_setting_anomalies_and_group():
    options = "--data-dir d --setting one-class --anomalies real synthetic-local --group tuning"
    args = build_parser().parse_args(["benchmark", "adbench", *options.split(" ")])
    assert (args.setting, args.anomalies, args.group, args.data_dir) == (
        "one-class",
        ["real", "synthetic-local"],
        "tuning",
        Path("d"),
    )
    default = build_parser().parse_args(["benchmark", "adbench", "--data-dir", "d"])
    assert (default.setting, default.anomalies, default.group, default.baselines) == (
        "contaminated",
        ["real"],
        "all",
        None,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "adbench", "--data-dir", "d", "--anomalies", "synthetic-odd"])


def test_mixed_and_fidelity():
    mixed = build_parser().parse_args(["benchmark", "mixed", "--seeds", "0", "--noise", "0.1"])
    assert (
        mixed.seeds == [0]
        and mixed.noise == 0.1
        and mixed.train_rows == 5000
        and mixed.handler.__name__ == "handle_mixed"
    )
    fidelity = build_parser().parse_args(["benchmark", "fidelity", "--samples", "100"])
    assert fidelity.samples == 100 and fidelity.rows == 5000 and fidelity.seeds == [0]
