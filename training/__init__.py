"""Training code for reascribe's own models (not installed with the product)."""
