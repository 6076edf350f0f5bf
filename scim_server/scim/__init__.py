"""Pure SCIM rules (RFC 7643/7644): no I/O here, only functions over plain data and SQL expressions."""
