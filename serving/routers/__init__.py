"""The API's routes, one router per concern: scoring, the model's description, probes and metrics."""
