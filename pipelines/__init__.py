"""Training, calibration, evaluation and registration pipelines; batch scoring; benchmarks."""
