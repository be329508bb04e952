"""Every collection and field name the Mongo store uses, in one place.

The resource itself is stored as canonical JSON *bytes* (``_body``), never as BSON fields, so nothing a client
sends ever becomes a MongoDB key: no ``$``-prefixed or dotted key can reach the server, and FHIR decimals such as
``1.50`` come back byte-for-byte. Every other field is server-owned and starts with an underscore. (FHIR JSON's own
``_element`` primitive-extension keys live only inside ``_body``, so they cannot collide.)

Document shapes::

    resources  {_id: "Consent/123", _type, _rid, _vid, _lu, _del, _body: Binary, _pc, _ix: {...}, _sa, _sd}
    history    {_id: "Consent/123/0000000002", _type, _rid, _vid, _lu, _del, _method, _body, _pc, _until}

``_ix`` always holds every key of :data:`IX_TYPES`, each an array of subdocuments (possibly empty) — one fixed
shape whatever the element's cardinality, so one multikey index per type serves every parameter of that type.
"""

from __future__ import annotations

RESOURCES = "resources"
HISTORY = "history"
CLAIMS = "conditional_claims"  # {_id: hash of type + criteria, n: int, at: date} (store/mongo/claims.py)

ID = "_id"
TYPE = "_type"
RID = "_rid"  # the FHIR logical id
VID = "_vid"  # int
LU = "_lu"  # lastUpdated instant, fixed-format UTC text: text order is time order
DELETED = "_del"
BODY = "_body"  # BSON Binary of the canonical JSON, None for deletes
METHOD = "_method"
PC = "_pc"  # patient compartment: the shard key (see docs/mongodb.md)
UNTIL = "_until"  # history only: lastUpdated of the next version (OPEN_END while current) — serves `_at`
OPEN_END = "9999-12-31T23:59:59.999Z"  # later than any instant
IX = "_ix"
SORT_ASC = "_sa"  # {param code: smallest value}: what an ascending _sort orders by
SORT_DESC = "_sd"  # {param code: largest value}

# One array per search-parameter type; the subdocument keys of each (p = the parameter code).
IX_FIELDS: dict[str, tuple[str, ...]] = {
    "string": ("p", "v", "e"),  # folded value, exact value
    "token": ("p", "s", "c", "d"),  # system, code, folded display/text
    "reference": ("p", "t", "i", "u"),  # target type, target id, absolute/canonical url
    "date": ("p", "lo", "hi"),  # inclusive UTC instants
    "number": ("p", "lo", "hi"),  # [lo, hi)
    "quantity": ("p", "s", "c", "u", "lo", "hi"),  # system, code, unit, [lo, hi)
    "uri": ("p", "v"),
}
IX_TYPES: tuple[str, ...] = (*IX_FIELDS, "composite")
# composite: {p, g (group), c0: {<typed fields>}, c1: {...}} — one entry per combination of component values.

# Shorter names for the index fields that queries address, e.g. ix("token", "c") == "_ix.token.c".


def ix(ptype: str, key: str | None = None) -> str:
    return f"{IX}.{ptype}" if key is None else f"{IX}.{ptype}.{key}"


HISTORY_ID_DIGITS = 10  # zero-padded version so history _ids sort in version order


def resource_key(resource_type: str, id: str) -> str:
    return f"{resource_type}/{id}"


def history_key(resource_type: str, id: str, version_id: int) -> str:
    return f"{resource_type}/{id}/{version_id:0{HISTORY_ID_DIGITS}d}"
