"""Spatial infrastructure: database, embedded PostGIS, coordinate systems, H3, GeoJSON."""
