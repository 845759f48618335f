"""The command-line client (`queue-worker enqueue|ls|show|watch|cancel|resume|retry|fork`).

It speaks only the HTTP API, so it works against any deployment (a laptop's `queue-worker dev`,
or a cluster through its Ingress) and imports nothing of the API or the worker.
"""
