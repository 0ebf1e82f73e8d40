"""Microsoft Graph (and, later, Exchange Online) per customer tenant, behind the `Directory` interface.
msgraph-sdk is imported lazily inside `graph.py` only: it is heavy, and the webhook path never needs it."""
