"""What can stop a download, named by remedy."""

from __future__ import annotations


class DownloadError(RuntimeError):
    """The download cannot go on; what was stored before it stays. The message says why."""


class RateLimitStop(DownloadError):
    """Binance asked for a pause longer than the run may wait: run the same command again later."""


class ChecksumError(DownloadError):
    """An archive file does not match its ``.CHECKSUM``: nothing from it was stored."""
