"""What webhook verification can conclude, PSA by PSA, mapped to HTTP statuses by tierone.webhooks."""


class MalformedWebhook(ValueError):
    """The body is not this PSA's webhook (400)."""


class ForgedWebhook(PermissionError):
    """Missing or wrong signature or credentials, or a key source we do not trust (401)."""


class VerificationUnavailable(ConnectionError):
    """We cannot verify right now, through no fault of the sender (503, retry later)."""
