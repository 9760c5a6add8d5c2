"""The field-task workflow: kinds and SLAs, the closed-loop lifecycle, dispatch, escalation, leads and scans."""
