"""The simulator's errors, each saying what went wrong and what to do about it.

    SimulatorError (a NatteroError)
    ├── ProfileError        a site profile is missing or does not validate
    ├── SpeedError          ``--speed`` is neither ``max`` nor a positive number
    ├── CredentialsError    a device's broker password is unknown or refused
    └── PublishError        the broker could not be reached or did not acknowledge in time
"""

from __future__ import annotations

from core.errors import NatteroError


class SimulatorError(NatteroError):
    """Base of every error the simulator raises on purpose."""


class ProfileError(SimulatorError):
    pass


class SpeedError(SimulatorError, ValueError):
    pass


class CredentialsError(SimulatorError):
    """``refused`` names the devices (``site/device``) whose credentials the broker refused."""

    def __init__(self, message: str, refused: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


class PublishError(SimulatorError):
    pass
