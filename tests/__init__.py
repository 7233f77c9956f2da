"""Nattero's test suite; shared fixtures live in ``tests.support`` (see tests/conftest.py)."""
