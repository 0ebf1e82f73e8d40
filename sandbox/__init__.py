"""Local stand-ins for what a laptop cannot reach: Azurite, a Functions host, a ConnectWise
PSA, a Microsoft Graph tenant. Used by `make demo`, `make serve` and the tests; never imported
by the core packages (`functions/`, `tierone/`, `psa_integrations/`, `identity_integrations/`)."""
