"""triggers of the Bria provider."""
