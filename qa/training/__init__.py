"""Training the project's models (never on the sets the eval reports)."""
