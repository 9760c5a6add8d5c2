"""Home observation (居家观察): follow-up plans for the persons a code tells to stay home, their twice-daily
checks, and the work that missed checks and fevers raise.

A package of its own beside ``tasks/``, ``leads/`` and ``checkpoints/``: a plan follows from a person's code
(``plans``), its checks are made a day at a time and swept for misses (``schedule``), a check-in is recorded by
the grid worker or by the person himself through his own link (``checks``, ``links``), a fever raises an escort
task and a code review (``fever``), and the desk pages read figures (``overview``, ``today``). Like the other
domain packages it imports nothing of the web side.
"""
