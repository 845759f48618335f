"""Code shared by the API and the worker: settings, names, SQL over the dbos schema, logging."""
