"""The three kinds of failure the pipeline distinguishes, so that each is handled once, in one place."""

from __future__ import annotations


class TierOneError(Exception):
    """Base of every error TierOne raises on purpose."""


class TransientError(TierOneError):
    """Worth retrying: throttling, timeouts, a 5xx. The queue message is left to be retried."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(TierOneError):
    """Retrying cannot help (a 400, a 403, a missing record): a human must look. Escalate with the reason."""


class ConfigError(TierOneError):
    """A setting is missing or malformed. Raised early with the setting's name, never a secret's value."""
