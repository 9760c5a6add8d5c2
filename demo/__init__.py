"""The embedded demo: its five accounts, a generated day of activity and synthetic feeds (marked so).

Never part of a real deployment; nothing in the product packages imports it.
"""
