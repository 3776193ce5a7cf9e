"""The real-time outlier API: FastAPI app, request/response schemas, Prometheus metrics, model loading."""
