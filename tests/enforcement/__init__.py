"""enforcement tests (run on both stores: see the Makefile's test-mongo)."""
