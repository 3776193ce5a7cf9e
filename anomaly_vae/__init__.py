"""anomaly-vae: variational autoencoder outlier detection with calibrated scores."""

from anomaly_vae.base import load
from anomaly_vae.image.detector import ImageVAEDetector
from anomaly_vae.tabular.detector import VAEDetector

__all__ = ["ImageVAEDetector", "VAEDetector", "load"]
__version__ = "0.1.0"
