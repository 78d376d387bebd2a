"""Reports for auditors: usage, SOC2, security and GDPR (see :mod:`gitaudit.report.model`)."""
