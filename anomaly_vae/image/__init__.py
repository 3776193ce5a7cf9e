"""Images: :class:`~anomaly_vae.ImageVAEDetector` and what it is built from."""
