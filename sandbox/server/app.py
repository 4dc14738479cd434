"""Assemble the sandbox server: the three vendor APIs on one loopback port."""

from __future__ import annotations

import threading
from pathlib import Path

from sandbox import store
from sandbox.server.core import SandboxServer, ServerSettings


def make_server(data_dir: str | Path, host: str = "127.0.0.1", port: int = 0,
                settings: ServerSettings | None = None) -> SandboxServer:
    """A server over an existing data dir; port 0 picks a free port."""
    from sandbox.server.harvest_api import HarvestApp
    from sandbox.server.hubspot_api import HubSpotApp
    from sandbox.server.stripe_api import StripeApp

    data_dir = Path(data_dir)
    con = store.connect(data_dir)
    try:
        credentials = store.get_meta(con, "credentials")
    finally:
        con.close()
    apps = [
        HubSpotApp(data_dir, credentials["hubspot"]),
        StripeApp(data_dir, credentials["stripe"]),
        HarvestApp(data_dir, credentials["harvest"]),
    ]
    return SandboxServer(data_dir, apps, host, port, settings or ServerSettings())


def client_settings(server: SandboxServer) -> dict[str, str]:
    """The settings that point a connector at this server, named as dlt reads them."""
    con = server.db()
    credentials = store.get_meta(con, "credentials")
    erp_url = store.erp_url(con, server.data_dir)
    base = server.base_url
    return {
        "SOURCES__HUBSPOT__BASE_URL": f"{base}/hubspot",
        "SOURCES__HUBSPOT__ACCESS_TOKEN": credentials["hubspot"]["access_token"],
        "SOURCES__STRIPE__BASE_URL": f"{base}/stripe",
        "SOURCES__STRIPE__API_KEY": credentials["stripe"]["api_key"],
        "SOURCES__HARVEST__BASE_URL": f"{base}/harvest/v2",
        "SOURCES__HARVEST__ACCESS_TOKEN": credentials["harvest"]["access_token"],
        "SOURCES__HARVEST__ACCOUNT_ID": credentials["harvest"]["account_id"],
        "SOURCES__ERP__CREDENTIALS": erp_url,
    }


class RunningServer:
    """A server on a background thread: `with RunningServer(data_dir) as server: ...`."""

    def __init__(self, data_dir: str | Path, settings: ServerSettings | None = None, port: int = 0):
        self.server = make_server(data_dir, port=port, settings=settings)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def settings(self) -> ServerSettings:
        return self.server.settings

    def client_settings(self) -> dict[str, str]:
        return client_settings(self.server)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
