"""Marshmallow schema of the SCIM Group resource, from the registry."""
from schemas.scim_resource import ResourceSchema, resource_schema
from scim_server.scim.attributes import GROUP


def group_schema() -> ResourceSchema:
    return resource_schema(GROUP)
