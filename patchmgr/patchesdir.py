"""Which patches directory a command works with, and why.

In order: `--patches DIR`, `$PATCHMGR_PATCHES`, the directory the checkout remembers
(`patchmgr.patches` in the superproject's .git/config, written by `patchmgr init DIR`, as StGit
and b4 keep their per-repository settings in git's config), and last the series installed with
patchmgr. The installed series is a default for reading only: a reinstall replaces it, so a
command that writes a patches directory refuses to write there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchmgr.errors import BadInput, UsageError
from patchmgr.gitio import Repo

CONFIG_KEY = "patchmgr.patches"
MANIFEST = "series.toml"


@dataclass(frozen=True)
class Located:
    path: Path
    how: str  # for status and messages: where the choice came from

    @property
    def installed(self) -> bool:
        return self.how == INSTALLED


INSTALLED = "the series installed with patchmgr"


def installed_series() -> Path:
    import patchmgr_series

    return Path(patchmgr_series.__file__).parent


def locate(explicit: Path | None, env: str | None, root: Path | None) -> Located:
    """The patches directory for a command run in the checkout at `root` (None outside one)."""
    if explicit is not None:
        return Located(explicit, "--patches")
    if env:
        return Located(Path(env), "$PATCHMGR_PATCHES")
    if root is not None:
        res = Repo(root).try_run("config", "--local", "--get", CONFIG_KEY, readonly=True)
        if res.status == 0 and res.out.strip():
            return Located(Path(res.out.strip()), f"{CONFIG_KEY} in {root / '.git' / 'config'} (patchmgr init)")
    return Located(installed_series(), INSTALLED)


def refuse_installed(located: Located, command: str) -> None:
    """A command that writes the patches directory never writes into the installed package."""
    if located.installed:
        raise UsageError(f"{command} writes a patches directory, and none is chosen for this checkout (the default "
                         f"is the series installed with patchmgr, at {located.path}, which a reinstall replaces); "
                         "run patchmgr init DIR once in the checkout, or pass --patches DIR")


def remember(root: Path, directory: Path) -> Path:
    """Record `directory` (made absolute, created when missing) as the checkout's patches
    directory; a directory with files but no manifest is refused, so a typo does not adopt one."""
    directory = directory.expanduser().resolve()
    if directory == installed_series().resolve():
        raise UsageError(f"{directory} is the series installed with patchmgr, which a reinstall replaces; "
                         "choose a directory of your own (patchmgr import starts its manifest)")
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"{directory} is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MANIFEST).is_file():
        raise BadInput(f"{directory} has files but no {MANIFEST}; choose an empty or new directory, "
                       f"or one with a {MANIFEST}")
    directory.mkdir(parents=True, exist_ok=True)
    Repo(root).run("config", "--local", CONFIG_KEY, str(directory))
    return directory


def init_command(root: Path, args) -> None:
    """`patchmgr init DIR`: the checkout works with DIR from now on."""
    from patchmgr.output import say

    directory = remember(root, args.directory)
    state = "its manifest is there" if (directory / MANIFEST).is_file() else \
        "it has no manifest yet: patchmgr import BASE..BRANCH --set NAME starts one"
    say(f"{root} works with the patches in {directory} ({state}); --patches and $PATCHMGR_PATCHES still override it")
