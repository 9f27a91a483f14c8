"""Errors a user can meet. Each message says what happened and what to do (ARCHITECTURE rule 11)."""

from __future__ import annotations


class DubStudioError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class MediaError(DubStudioError):
    """A media file cannot be opened, has no usable stream, or is corrupt/truncated."""


class ProjectError(DubStudioError):
    """A project folder is missing, corrupt, or from an incompatible schema."""


class NoFaceError(DubStudioError):
    """No face was found where one is required."""


class Cancelled(DubStudioError):
    """A job was cancelled by the user; everything done so far is saved."""
