"""queue-worker: durable background work on Kubernetes (DBOS workflows behind an HTTP API)."""

__version__ = "0.1.0"
