"""``python -m scim_server``: the ``jsm-scim`` command line."""
from scim_server.cli import main

if __name__ == "__main__":
    main(prog_name="jsm-scim")
