"""Nattero: night monitoring for residential care homes."""

__version__ = "0.1.0"
