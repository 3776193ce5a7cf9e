"""anomaly-vae: variational autoencoder outlier detection with calibrated scores."""

from anomaly_vae.detector import VAEDetector
from anomaly_vae.image_detector import ImageVAEDetector

__all__ = ["ImageVAEDetector", "VAEDetector"]
__version__ = "0.1.0"
