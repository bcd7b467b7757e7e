"""Backbones for the sampler: the analytic Gaussian-process prior (exact reference) and, later, VidRD."""

from .gaussian_prior import ExactDenoiser, GaussianVideoPrior

__all__ = ["ExactDenoiser", "GaussianVideoPrior"]
