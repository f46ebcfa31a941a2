"""Spaceport's benchmarks: ``python -m benchmarks`` (``make bench``) measures each stage on this machine.

Every suite compares our code against an alternative or a stated target in the same process, so the ratios
hold even on a busy machine; the figures go to ``benchmarks/results.json`` and ``benchmarks/RESULTS.md``,
each suite stamped with the machine it ran on.
"""
