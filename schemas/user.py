"""Marshmallow schema of the SCIM User resource (core + enterprise extension), from the registry."""
from schemas.scim_resource import ResourceSchema, resource_schema
from scim_server.scim.attributes import USER


def user_schema() -> ResourceSchema:
    return resource_schema(USER)
