"""What the server publishes for implementers: its conformance content as a FHIR NPM package (the
ImplementationGuide), and offline validation of files with the engine behind ``$validate``."""
