"""Shared runtime of the inference service: one module per concern.

- `settings`: environment-driven configuration.
- `aws`: cached boto3 clients.
- `errors` / `http`: domain exceptions and the one place they become problem+json responses.
- `store`: the DynamoDB item design (users, tenants, login attempts, signing key ring).
- `passwords`: argon2id hashing (login only).
- `tokens`: signing with KMS, verification with PyJWT, the JWKS document.
- `payload`: strict parsing and validation of prediction requests.
- `models`: integrity-pinned model loading and the warm-container cache.
"""
