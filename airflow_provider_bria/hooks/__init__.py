"""hooks of the Bria provider."""
