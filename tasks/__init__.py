"""The field-task workflow: kinds and SLAs, the closed-loop lifecycle, dispatch, escalation, photos.

Where tasks come from lives beside it: the matcher's requests (:mod:`tasks.intake`), leads
(:mod:`leads`), checkpoint alerts (:mod:`checkpoints`); how the work is judged, in
:mod:`evaluation`.
"""
