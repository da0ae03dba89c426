"""The local Zendesk server, for tests of code that uses zdevents.

>>> from zdevents.testing import LocalZendesk, SampleAccount
>>> with LocalZendesk(SampleAccount(tickets=5)) as server:  # doctest: +SKIP
...     print(server.url)
"""

from .sample import SampleAccount
from .sample.server import FAULT_KINDS, LocalZendesk, LoggedRequest, main

__all__ = ["FAULT_KINDS", "LocalZendesk", "LoggedRequest", "SampleAccount", "main"]
