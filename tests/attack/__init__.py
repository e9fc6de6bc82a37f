"""Black-box attack suite: HTTP only, against the local stack or a deployed URL (`make smoke`)."""
