"""Shared runtime of the inference service: one module per concern.

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
- `payload`: strict parsing and validation of prediction requests.
- `models`: integrity-pinned model loading, the warm-container cache, and predict's state
  (`PredictRuntime`).
- `sklearn_models`: audited skops estimators (where the scikit-learn layer is attached).
- `tenant_metrics`: the per-tenant EMF line of each prediction.
"""
