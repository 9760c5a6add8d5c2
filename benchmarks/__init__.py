"""The benchmarks behind ``gridctl bench``: each prints its figures and ends with one line of JSON.

Figures are ratios against a peer measured in the same run (these machines are noisy); the results
and the machines they came from are kept in ``benchmarks/RESULTS.md``. Nothing in the product
imports this package.
"""
