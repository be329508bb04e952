"""FHIR Bulk Data Access 2.0 export (``$export``): kick-off parsing, the background runner, NDJSON files, and the
Care Partner Groups that make ``Group/[id]/$export`` "everyone who authorised us". See docs/bulk-export.md."""
