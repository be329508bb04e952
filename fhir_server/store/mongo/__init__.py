"""The MongoDB production store (``pymongo.AsyncMongoClient``); see docs/mongodb.md."""

from fhir_server.store.mongo.errors import TransactionConflict
from fhir_server.store.mongo.store import MongoStore, MongoTransaction
from fhir_server.store.mongo.topology import StandaloneNotSupported

__all__ = ["MongoStore", "MongoTransaction", "StandaloneNotSupported", "TransactionConflict"]
