"""The area hierarchy (district → town → community → grid), grid import and validation,
H3 coverage, the Nanhai reference district, and the staff who own the grids."""
