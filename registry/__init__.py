"""The model registry: what a tenant's model is, whether it may be served, and how it is published.

Used by the operator CLI (`inferctl`) and, later, by the registering function; it never imports
`inferctl` (the import graph runs one way: the CLI above the registry above the layers).
"""
