"""Transaction and batch Bundles: planning (pure) lives here; execution in ``fhir_server.repository.bundle``."""
