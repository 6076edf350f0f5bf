"""HTTP blueprints of the SCIM API (``scim``, with ``resources`` and ``discovery``) and ``ops``."""
