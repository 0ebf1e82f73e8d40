"""PSA integrations: one package per PSA behind the `PsaClient` interface, plus the normalized models."""
