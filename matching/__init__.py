"""Feeds in, data collision, risk rules, and locating each person in his grid."""
