"""The host daemon: the single writer of a host's store (DESIGN.md "Data flow").

Modules: ``api`` (contracts between the parts), ``metrics``, ``server``
(lifecycle, event socket, journal, batch writer), ``trace2_receiver``,
``subscribers`` (live tail) and ``sinks`` (HTTP and syslog forwarding).
"""
