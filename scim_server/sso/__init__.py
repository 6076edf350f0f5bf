"""SAML 2.0 service provider for JSM customer login."""
