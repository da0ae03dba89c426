"""Stand-ins for tests of code that uses zdevents: a local Zendesk server and an S3 server.

>>> from zdevents.testing import LocalZendesk, SampleAccount
>>> with LocalZendesk(SampleAccount(tickets=5)) as server:  # doctest: +SKIP
...     print(server.url)

:func:`s3_stand_in` runs an S3-compatible server on 127.0.0.1 (moto's, installed with
``pip install "moto[server]"``, a test dependency of zdevents) for a cache on ``s3://``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from .sample import SampleAccount
from .sample.server import FAULT_KINDS, LocalZendesk, LoggedRequest, main

__all__ = [
    "FAULT_KINDS",
    "LocalZendesk",
    "LoggedRequest",
    "S3StandIn",
    "SampleAccount",
    "main",
    "s3_stand_in",
]


@dataclass(frozen=True)
class S3StandIn:
    """A running S3 stand-in (see :func:`s3_stand_in`).

    Attributes
    ----------
    url : str
        ``s3://<bucket>``: a data dir (add a prefix to share the bucket, ``f"{url}/team"``).
    endpoint : str
        ``http://127.0.0.1:<port>``: what the object-store clients send their requests to.
    bucket : str
    env : dict
        The ``AWS_*`` variables that point delta-rs, pyarrow, polars, DuckDB and boto3 at it
        (dummy keys: the stand-in checks none). Left out of the repr.
    """

    url: str
    endpoint: str
    bucket: str
    env: dict[str, str] = field(repr=False)


@contextlib.contextmanager
def s3_stand_in(bucket: str = "zdevents-test", *, set_env: bool = True) -> Iterator[S3StandIn]:
    """Run an S3-compatible server on a free 127.0.0.1 port, with ``bucket`` created.

    The server is moto's S3 backend, served by a threaded WSGI server in this process until
    the ``with`` block ends; nothing leaves the machine and its objects live in memory. With
    ``set_env`` (the default) the ``AWS_*`` variables of :attr:`S3StandIn.env` are set for
    the block (child processes inherit them) and restored after it.

    Parameters
    ----------
    bucket : str
        The bucket to create (S3 naming rules: 3-63 lowercase letters, digits, ``-``).
    set_env : bool
        False: leave ``os.environ`` alone (pass :attr:`S3StandIn.env` to the clients).

    Yields
    ------
    S3StandIn

    Raises
    ------
    ImportError
        When moto is not installed (``pip install "moto[server]"``).

    Examples
    --------
    >>> from zdevents.store import DeltaCache
    >>> with s3_stand_in() as s3:
    ...     cache = DeltaCache(s3.url, "acme", "metric_events")
    ...     cache.create(), cache.uri, s3.endpoint.startswith("http://127.0.0.1:")
    (0, 's3://zdevents-test/acme/metric_events', True)
    """
    server = _s3_server()
    thread = threading.Thread(target=server.serve_forever, name="s3-stand-in", daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "stand-in-key-id",
        "AWS_SECRET_ACCESS_KEY": "stand-in-secret-key",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    before = {key: os.environ.get(key) for key in env}
    try:
        if set_env:
            os.environ.update(env)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        yield S3StandIn(url=f"s3://{bucket}", endpoint=endpoint, bucket=bucket, env=env)
    finally:
        if set_env:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        server.shutdown()
        server.server_close()
        thread.join(5)


def _s3_server():  # -> werkzeug.serving.BaseWSGIServer
    """moto's S3 app on a threaded WSGI server bound to a free loopback port (not started).

    The S3 app is served directly: moto's all-services dispatcher costs about 5 ms a request
    (it looks the service up on disk, under a lock), several times what S3 itself costs.
    """
    from werkzeug.serving import make_server

    try:
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    except ImportError as exc:
        raise ImportError(
            f"the S3 stand-in needs moto's server: pip install 'moto[server]' ({exc})"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
    return make_server(
        "127.0.0.1", 0, create_backend_app("s3"), threaded=True, request_handler=MotoRequestHandler
    )
