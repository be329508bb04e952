"""Driver exceptions → the FHIR error family, so nothing from pymongo reaches a client as a 500.

MongoDB aborts the *loser* of two transactions that write the same document with ``WriteConflict`` (code 112,
label ``TransientTransactionError``); a unique-key race on create shows up the same way or as ``DuplicateKey``.
Every document a transaction writes belongs to the resource being written (or is a conditional-create claim,
:mod:`.claims`), so a conflict always means a concurrent request got there first: a version race, or a race to
create under the same condition. Inside :meth:`MongoStore.transaction` the caller's block cannot be re-run, so it
surfaces as :class:`TransactionConflict` — a 412 with issue code ``conflict``, exactly what the ``If-Match`` loser
would get had it run second. :meth:`MongoStore.run_transaction` (and the Bundle processor) re-run the whole unit
instead, as the driver docs advise.
"""

from __future__ import annotations

import logging

from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, DocumentTooLarge, DuplicateKeyError, OperationFailure, PyMongoError

from fhir_server.fhir.outcome import BadRequest, FHIRError, PayloadTooLarge
from fhir_server.store.base import RaceLost

WRITE_CONFLICT = 112
DUPLICATE_KEY = 11000
TOO_LARGE = (10334, 17419, 17420, 2)  # BSONObjectTooLarge and friends; 2 = BadValue "object to insert too large"
TRANSIENT = "TransientTransactionError"
log = logging.getLogger("fhir_server.store.mongo")
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"


class TransactionConflict(RaceLost):
    """A concurrent transaction changed what this one read and wrote; the unit was rolled back (412 conflict)."""


class StoreUnavailable(FHIRError):
    """The database cannot be reached or refused the operation for a server-side reason (503)."""

    def __init__(self, diagnostics: str) -> None:
        FHIRError.__init__(self, 503, "transient", diagnostics)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, PyMongoError) and error.has_error_label(TRANSIENT)


def is_conflict(error: BaseException) -> bool:
    if isinstance(error, DuplicateKeyError):
        return True
    if isinstance(error, BulkWriteError):  # insert_many/bulk_write report a duplicate _id per written document
        codes = {e.get("code") for e in error.details.get("writeErrors", [])}
        if codes & {DUPLICATE_KEY, WRITE_CONFLICT}:
            return True
    return isinstance(error, OperationFailure) and (error.code == WRITE_CONFLICT or is_transient(error))


def translate(error: BaseException, what: str) -> FHIRError:
    """The FHIR error for a driver failure while doing ``what`` (e.g. ``"writing Consent/1"``)."""
    if isinstance(error, FHIRError):
        return error
    if is_conflict(error):
        return TransactionConflict(
            f"{what} lost a race: a concurrent request changed it first, so this change (based on the version read "
            f"before) was not saved — read the resource again and retry")
    if isinstance(error, DocumentTooLarge) or (
            isinstance(error, OperationFailure) and error.code in TOO_LARGE and "too large" in str(error)):
        return PayloadTooLarge(f"{what} failed: the document exceeds MongoDB's 16 MB BSON limit")
    if isinstance(error, InvalidDocument | UnicodeEncodeError):
        return BadRequest(f"{what} failed: the data cannot be stored ({type(error).__name__})", code="invalid")
    log.warning("MongoDB error while %s", what, exc_info=error)
    return StoreUnavailable(f"{what} failed: the database is unavailable or refused the operation")
