"""HTTP blueprints."""
from flask import Flask


def register_blueprints(app: Flask) -> None:
    from scim_server.api import ops, scim
    from scim_server.sso import views as sso_views

    app.register_blueprint(scim.blueprint)
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(sso_views.blueprint)
