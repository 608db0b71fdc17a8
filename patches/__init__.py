"""The patch series as data: series.toml and the format-patch files it lists.

Installed as the package `patchmgr_series` so that an installed patchmgr
finds its series without being told where the repository is.
"""
