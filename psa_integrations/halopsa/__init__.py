"""HaloPSA: REST client (OAuth2 client credentials), Basic-auth webhook verifier, webhook registrar."""
