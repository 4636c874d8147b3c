"""Small Kubernetes helpers used by the operations (never by the pure planners)."""
