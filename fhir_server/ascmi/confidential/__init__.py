"""Confidential communications (ASCMI.md §6; California Civil Code §56.107): intake of a member's request that
communications about them go only to a contact they designate, the fulfil Tasks with their due dates, and the
``Patient/$communication-contact`` lookup."""
