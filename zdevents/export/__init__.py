"""Getting the data out of Zendesk: HTTP client and pacing, page parsers, fetch and progress.

Knows nothing of pandas frames: pages become Arrow tables in :mod:`zdevents.schema`'s
schemas, and :func:`~zdevents.export.fetch.fetch` commits them to :mod:`zdevents.store`.

A request goes through ``client`` (session, retries, ``Client.pages``), ``pacing`` (the
shared rate budget), ``deadline`` (overall deadline, bounded body), ``answers`` (statuses
to errors), ``stats`` (what a client did), ``auth`` and ``redact`` (credentials in, secrets out); a page through
``envelope`` and ``paging`` (where an export ends), then ``metric_events`` or
``ticket_events`` (the stream parsers, gathered in ``parse``), ``writer`` (batches to store
commits) and ``fetch`` (the plan of ``plan``, progress of ``progress``). ``names`` fetches
group and brand names.
"""
