"""ConnectWise PSA: callbacks (signed webhooks) and the REST API client."""
