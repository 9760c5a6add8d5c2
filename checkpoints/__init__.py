"""Checkpoint filtering (卡口过滤): passes scanned at a community's gates.

:mod:`checkpoints.repository` records a scan, raises a checkpoint-alert task for a red or yellow
person, and counts passes per hour. Where the gates stand is part of the area hierarchy
(:mod:`grids.checkpoints`).
"""
