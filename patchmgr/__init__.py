"""patchmgr: carry a versioned patch series on rustc and its LLVM submodule."""

__version__ = "0.1.0"
