"""jsm-scim-bridge: SCIM 2.0 provisioning and SAML login for Jira Service Management customers."""

__version__ = "0.2.0"
