"""The bridge's IdP metadata (SAML 2.0 metadata schema), built with lxml."""
from __future__ import annotations

from lxml import etree

from scim_server.idp.identity import IdentityProvider
from scim_server.sso.safexml import DS, MD
from scim_server.sso.sp import BINDING_POST, BINDING_REDIRECT, NAMEID_EMAIL, add_signing_key


def idp_metadata_xml(idp: IdentityProvider) -> bytes:
    """Entity ID, signing certificate, emailAddress NameID, SSO service for both bindings."""
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS}, entityID=idp.entity_id)
    descriptor = etree.SubElement(
        root,
        f"{{{MD}}}IDPSSODescriptor",
        WantAuthnRequestsSigned="false",
        protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
    )
    add_signing_key(descriptor, idp.certificate_pem)
    etree.SubElement(descriptor, f"{{{MD}}}NameIDFormat").text = NAMEID_EMAIL
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(descriptor, f"{{{MD}}}SingleSignOnService", Binding=binding, Location=idp.sso_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
