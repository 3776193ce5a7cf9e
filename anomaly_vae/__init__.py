"""anomaly-vae: variational autoencoder outlier detection with calibrated scores."""

from anomaly_vae.detector import VAEDetector

__all__ = ["VAEDetector"]
__version__ = "0.1.0"
