"""Spaceport: photos to a compressed 3D Gaussian splat, locally or on AWS SageMaker."""

__version__ = "0.1.0"
