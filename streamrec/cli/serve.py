"""``streamrec serve``: the HTTP read API (OpenAPI at /docs) and the operator dashboard
(/dashboard) over the settings' database, until stopped (docs/api.md)."""

from __future__ import annotations

import click

from streamrec.config import Settings


@click.command(name="serve")
@click.option("--host", default=None, help="Listen address (default: api.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Default: api.port.")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the read API and the operator dashboard."""
    import torch
    import uvicorn

    from streamrec.api.app import create_app
    from streamrec.api.context import ApiContext
    from streamrec.observability import configure_logging
    from streamrec.storage import check_connection, create_database_engine

    configure_logging(settings.observability)
    # One request encodes at most one history: torch's thread pool only adds latency.
    torch.set_num_threads(1)
    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    check_connection(engine)
    host = host or settings.api.host
    port = settings.api.port if port is None else port
    if settings.api.operator_token is None:
        click.echo("api.operator_token is not set: the dashboard's actions are off", err=True)
    click.echo(f"serving on http://{host}:{port}/dashboard (API docs at /docs)", err=True)
    try:
        # log_config=None: uvicorn's loggers go through streamrec's logging, masked.
        uvicorn.run(
            create_app(ApiContext.create(settings, engine)),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
        )
    finally:
        engine.dispose()
