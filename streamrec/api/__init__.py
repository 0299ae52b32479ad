"""``streamrec serve``: the HTTP read API and the operator dashboard (docs/api.md).

``app.create_app`` builds the FastAPI application over an ``context.ApiContext``; the read
API is in ``read_api``, the dashboard in ``dashboard`` (templates in ``templates/``), who
may read and act in ``security``. Everything reads through ``streamrec.services`` and the
storage; the two actions go through the same code as the CLI
(``streamrec.services.operator_actions``).
"""
