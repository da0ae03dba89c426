"""The S3 stand-in of the Delta Lake store tests: :func:`zdevents.testing.s3_stand_in`.

Nothing reaches the internet: moto's S3 server runs in the test process on a free loopback
port, and the object-store clients (delta-rs, pyarrow, polars, boto3) are pointed at it
through the standard ``AWS_*`` environment variables, with dummy keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from zdevents.testing import s3_stand_in

BUCKET = "zdevents-test"


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """Start the S3 stand-in with the test bucket, set the ``AWS_*`` variables; yield them."""
    with s3_stand_in(BUCKET) as s3:
        yield s3.env
