"""Local Bria API emulator (FastAPI). Imported only by the ``bria-emulator`` command and tests."""
