"""Reports for auditors: usage, SOC2, security and GDPR (``gitaudit report KIND``).

- :mod:`gitaudit.report.model`: the Report every kind builds and every renderer reads;
- :mod:`gitaudit.report.options`: :class:`~gitaudit.report.options.ReportOptions`, what a
  kind is told besides the filter (period, protected refs, working hours, settings);
- :mod:`gitaudit.report.kinds`: the dispatch table, kind -> ``build(conn, flt, options,
  progress) -> Report``; one module per kind (:mod:`gitaudit.report.usage`, ...);
- :mod:`gitaudit.report.common`: what kinds share (the report frame, narrowing a filter,
  top-N tables);
- ``render_json``, ``render_md``, ``render_html`` (+ ``templates/``): the formats.

Importing this package imports nothing else: a kind and a renderer are imported when used.
"""
