"""operators of the Bria provider."""
