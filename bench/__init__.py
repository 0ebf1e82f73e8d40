"""`make bench`: TierOne's benchmark suite on the local sandbox.

Measures cold import of the function app, webhook acknowledgement latency, and webhook → ticket
closed latency end to end (with and without injected PSA/Graph latency). It reports figures and
never fails on a time threshold; it exits non-zero only when something is broken."""
