"""Shared runtime of the inference service (the core, in the layer every function gets): one
module per concern. No numpy, no model library: the ML part is `model_serving` (predict only).

- `settings`: environment-driven configuration, validated at cold start.
- `runtime`: one container's state (`Runtime`): settings, lazily created boto3 clients, the table,
  the tenant, key-ring and token caches. Built once per container and passed to the calls below.
- `table`: the DynamoDB item design (users, tenants, login attempts, signing key ring, machine
  clients, model registration records): entities with their encoding, and the repository `Table`.
- `access`: the rules on top of the table: tenant resolution and the login lockout.
- `ttl_cache`: the read-through cache with a time to live.
- `errors` / `http`: domain exceptions and the one place they become problem+json responses.
- `passwords`: argon2id hashing (login only).
- `credentials` / `oauth`: token requests (password and client credentials grants), client secrets.
- `tokens`: signing with KMS, verification with PyJWT, the JWKS document (`Tokens`).
- `tenant_metrics`: the per-tenant EMF line of each prediction.
"""
