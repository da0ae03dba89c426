"""Getting the data out of Zendesk: HTTP client and pacing, page parsers, fetch and progress.

Knows nothing of pandas frames: pages become Arrow tables in :mod:`zdevents.schema`'s
schemas, and :func:`~zdevents.export.fetch.fetch` commits them to :mod:`zdevents.store`.
"""
