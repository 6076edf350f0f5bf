"""Parsing of untrusted XML (SAML responses, IdP metadata) with every dangerous feature off.

Two layers: defusedxml (expat) refuses any DTD, entity declaration or external reference
before anything else looks at the document (XXE, billion laughs), then lxml parses it with
entities, DTD loading and network access disabled, for signxml and XPath.
"""
from __future__ import annotations

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedElementTree
from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "md": MD, "ds": DS}


class UnsafeXml(ValueError):
    """The document uses a forbidden XML feature (DTD, entities, external references)."""


class MalformedXml(ValueError):
    """The document is not well-formed XML."""


def hardened_parser() -> etree.XMLParser:
    """An lxml parser that never resolves entities, loads DTDs or touches the network.

    Comments are dropped: canonicalization ignores them for signatures, and dropping them closes
    the "comment inside NameID" truncation trick.
    """
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_untrusted(data: bytes, max_bytes: int) -> etree._Element:
    """Parse ``data`` safely, or raise :class:`UnsafeXml` / :class:`MalformedXml`."""
    if len(data) > max_bytes:
        raise MalformedXml(f"document larger than {max_bytes} bytes")
    try:
        DefusedElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXml(type(exc).__name__) from None
    except DefusedElementTree.ParseError as exc:
        raise MalformedXml(str(exc)) from None
    try:
        root = etree.fromstring(data, parser=hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedXml(str(exc)) from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:  # belt and braces
        raise UnsafeXml("DTD")
    return root


def text_of(element: etree._Element | None) -> str | None:
    """All text inside ``element`` (not only the part before a child), stripped; None if absent."""
    if element is None:
        return None
    return "".join(element.itertext()).strip()
