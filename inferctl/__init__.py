"""Operator tooling: onboard tenants and users, publish model versions, rotate keys."""
