"""The Care Partner web page served at ``/app/`` (docs/app.md): static HTML, CSS and JavaScript modules bundled
as package data, plus the message catalogues (``static/i18n/<lang>.json``) in the four languages it speaks.

The page is a plain client of the public API — intake, FHIR search, ``$decide``, AuditEvent — with the signed-in
user's token, so every rule of ACCESS.md §B applies to what staff see; nothing here decides access.
"""
