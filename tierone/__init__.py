"""TierOne core: the ticket pipeline and everything it decides. No Azure Functions imports here."""
