"""One module per workflow."""
