"""Azure Functions triggers only: parse, call the core, respond. No business rule lives here."""
