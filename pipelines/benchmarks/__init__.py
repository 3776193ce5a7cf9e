"""Benchmarks: ADBench, one-class MNIST, speed, batch scoring, serving, drift and calibration, with the
baselines they share. ``anomaly-vae benchmark ...`` runs them; they may use the jobs of :mod:`pipelines`,
which never use them."""
