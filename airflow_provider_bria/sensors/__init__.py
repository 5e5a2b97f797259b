"""sensors of the Bria provider."""
