"""Tabular data: :class:`~anomaly_vae.VAEDetector` and what it is built from."""
