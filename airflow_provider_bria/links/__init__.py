"""links of the Bria provider."""
