"""The errors the data layer raises for people: missing data (with how to get it) and broken files."""

from __future__ import annotations


class DataNotFoundError(FileNotFoundError):
    """A dataset is in none of the places looked in and was not downloaded; the message says how to get it."""

    def __str__(self) -> str:  # FileNotFoundError(msg) prints plainly; keep that for multi-line messages
        return str(self.args[0]) if self.args else ""


class DownloadError(DataNotFoundError):
    """A download failed (no network, bad URL, checksum mismatch); the message says how to get the files."""


class CorruptDataError(ValueError):
    """A data file exists but is truncated, corrupt or not in the expected format."""
