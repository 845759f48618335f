"""The worker service: launches DBOS, registers the queues and runs the workflows they hold."""
