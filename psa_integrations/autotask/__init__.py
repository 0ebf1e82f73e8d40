"""Autotask PSA: signed ticket webhooks, the REST client (zone discovery, header auth) and the
webhook registrar."""
