"""Narrative xhtml (narrative.html#xhtml): a ``div`` in the xhtml namespace holding only the basic formatting
elements and attributes of HTML 4.0 — no scripts, forms, objects, event handlers or DOCTYPE (XXE).

The HL7 validator parses the div and reports each illegal element and attribute by name (beside the ``txt-1``
invariant, which fails with them), a wrong or missing namespace on its own, and a parse error; this module
does the same, once per distinct text (narratives repeat across resources of a bundle).
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET  # noqa: S405 - no DTD or entity is ever expanded: DOCTYPE is refused first
from dataclasses import dataclass

XHTML_NS = "http://www.w3.org/1999/xhtml"
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_DOCTYPE = re.compile(r"<!DOCTYPE|<!ENTITY", re.IGNORECASE)

ELEMENTS = frozenset({
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong", "small", "big",
    "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address", "bdo", "kbd", "sub", "sup",
    "ul", "ol", "li", "dl", "dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead", "tr", "tfoot",
    "tbody", "th", "td", "code", "samp", "img", "map", "area", "ins", "del", "s", "u",
})
ATTRIBUTES = frozenset({
    "title", "style", "class", "id", "lang", "xml:lang", "dir", "accesskey", "tabindex",
    "span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope", "rowspan",
    "colspan",
})
ELEMENT_ATTRIBUTES = frozenset({
    "a.href", "a.name", "a.charset", "a.type", "a.hreflang", "a.rel", "a.rev", "a.shape", "a.coords",
    "img.src", "img.border", "img.alt", "img.longdesc", "img.height", "img.width", "img.usemap", "img.ismap",
    "blockquote.cite", "q.cite", "map.name", "area.shape", "area.coords", "area.href", "area.nohref", "area.alt",
    "table.summary", "table.width", "table.border", "table.frame", "table.rules", "table.cellspacing",
    "table.cellpadding", "pre.space", "td.nowrap", "ol.start", "ol.type", "ul.type", "li.value",
})


@dataclass(frozen=True, slots=True)
class XhtmlCheck:
    problems: tuple[str, ...]  # errors of their own (parse error, illegal names, namespace)
    subset_ok: bool  # htmlChecks() for txt-1: parsed, and only allowed elements and attributes


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


@functools.lru_cache(maxsize=1024)
def check_xhtml(text: str) -> XhtmlCheck:
    if _DOCTYPE.search(text):
        return XhtmlCheck(("Error parsing XHTML: a DOCTYPE or ENTITY declaration is not allowed (XXE protection)",),
                          False)
    try:
        root = ET.fromstring(text)  # noqa: S314 - see the import
    except ET.ParseError as exc:
        return XhtmlCheck((f"Error parsing XHTML: malformed XHTML ({exc})",), False)
    problems: list[str] = []
    ns, name = _local(root.tag)
    if name != "div":
        problems.append(f"The narrative's root element must be a div, not {name!r}")
    if ns != XHTML_NS:
        problems.append(f"Wrong namespace on the XHTML ({ns or 'none'!r}, should be {XHTML_NS!r})")
    subset_ok = True
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        _, tag = _local(element.tag)
        if tag not in ELEMENTS:
            problems.append(f"Illegal element name in the XHTML ({tag!r})")
            subset_ok = False
        for attribute in element.attrib:
            a = "xml:" + attribute[len(_XML_NS):] if attribute.startswith(_XML_NS) else _local(attribute)[1]
            if a.startswith("xmlns") or a in ATTRIBUTES or f"{tag}.{a}" in ELEMENT_ATTRIBUTES:
                continue
            problems.append(f"Illegal attribute name in the XHTML ({a!r} on {tag!r})")
            subset_ok = False
    return XhtmlCheck(tuple(problems), subset_ok)
