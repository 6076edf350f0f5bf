"""The bridge as the SAML identity provider that JSM's customer SSO (Atlassian Guard) trusts."""
