"""Evaluation of field work: the standard indicators per district, town, community or grid.

- :mod:`evaluation.indicators` — closure, on-time closure, rework and extension rates, handling
  times and persons by colour, in the actor's scope (small counts suppressed for reporters);
- :mod:`evaluation.disclosure` — which person counts a reporter may not see (primary and complementary
  suppression);
- :mod:`evaluation.daily` — figures per Beijing day: the reports page's trend and the daily report (日报);
- :mod:`evaluation.export` — the same rows as CSV and Excel (one grid of cells, so the two agree cell for cell),
  stamped with their data time and query; the 日报 as Excel and PDF.
"""
