"""Leads (线索): tip-offs from the public or a department.

- :mod:`leads.reports` — what a report must carry, how it is normalised, and the merge rule
  (same address, or within 50 m, inside 24 hours);
- :mod:`leads.repository` — storing a report (merged into an open lead or a new one), listing in
  scope, and triage into a task of the workflow (:mod:`tasks`).
"""
