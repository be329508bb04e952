"""The repository: FHIR interactions (create, update, delete, patch …) on top of a Store.

It sits between the HTTP layer and the store: it validates and stamps resources (pure FHIR logic from
``fhir_server.fhir``) and performs the reads and writes through the Store interface inside a transaction.
Bundles, ASCMI intake and the consent services all write through here.
"""
