"""Audience Studio: analytics and segmentation for e-commerce marketing teams."""

__version__ = "0.1.0"
