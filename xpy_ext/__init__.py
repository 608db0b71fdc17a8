"""Everything that drives x.py: config rendering, preflight checks, the build.

Kept apart from the patch engine so that nothing else in patchmgr touches the
bootstrap.
"""
