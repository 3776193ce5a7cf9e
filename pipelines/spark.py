"""Scale-out scoring on Spark: the registered pyfunc model as a Spark UDF.

```python
from pyspark.sql import SparkSession
from pipelines.spark import score_spark

spark = SparkSession.builder.getOrCreate()
events = spark.read.parquet("s3://bucket/events/")
scored = score_spark(events, "models:/payments@champion")   # every column of events + the score columns
scored.write.parquet("s3://bucket/scores/")
```

Each executor loads the model once (``mlflow.pyfunc.spark_udf``) and scores Arrow batches with the same
code as the local path, so the scores agree with ``anomaly-vae score`` up to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import mlflow

from pipelines.registry import configure_tracking, load_detector

SCORE_TYPES = {
    "neg_elbo": "double",
    "reconstruction_nll": "double",
    "kl": "double",
    "neg_log_likelihood": "double",
    "p_value": "double",
    "p_value_neg_elbo": "double",
    "p_value_reconstruction_nll": "double",
    "is_outlier": "boolean",
    "missing_unseen": "long",
    "unknown_categories": "long",
}


def score_spark(frame: Any, model_uri: str, *, env_manager: str = "local") -> Any:
    """``frame`` (a Spark DataFrame holding the model's columns) with the score columns appended."""
    configure_tracking()
    detector, _ = load_detector(model_uri)  # fails early, on the driver, for a bad URI or missing columns
    features = list(detector.feature_names_in_)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"missing column(s) for the model: {missing}")
    result_type = ", ".join(f"{name} {kind}" for name, kind in SCORE_TYPES.items())
    udf = mlflow.pyfunc.spark_udf(frame.sparkSession, model_uri, result_type=result_type, env_manager=env_manager)
    scored = frame.withColumn("_scores", udf(*[frame[c] for c in features]))
    return scored.select(*frame.columns, *[scored["_scores"][name].alias(name) for name in SCORE_TYPES])
