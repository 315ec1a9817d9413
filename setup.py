"""The one thing pyproject.toml cannot say: the optional C extension numpynn._fused.

It holds the fused training kernels (src/numpynn/_fused.c) and is compiled by the
install itself (``pip install -e .`` or ``pip install .``), never at run time. It is
optional: without a C compiler or Python's headers the build warns, the install goes
on without it, and training uses the NumPy kernels (the same bits, somewhat slower).
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# IEEE arithmetic exactly as NumPy does it: every operation rounded on its own (no fused
# multiply-add, no fast-math), so the C loops give the NumPy reference's bits. No trapping
# math: the floating-point exception flags need not follow the source, which lets GCC turn a
# comparison's select into vector code (the values are the same).
UNIX_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
MSVC_FLAGS = ["/O2", "/fp:precise"]


class OptionalBuildExt(build_ext):
    """build_ext that adds the flags for the compiler at hand and never fails the install."""

    def build_extension(self, ext: Extension) -> None:
        kind = getattr(self.compiler, "compiler_type", "")
        ext.extra_compile_args = list(MSVC_FLAGS if kind == "msvc" else UNIX_FLAGS)
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001 - a compiler error, a full disk: go on without it
            skipped(e)

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - no compiler at all, a folder that takes nothing
            skipped(e)


def skipped(error: Exception) -> None:
    reason = " ".join(str(error).split()) or type(error).__name__
    print(f"warning: numpynn._fused (the C training kernels) was not built ({reason}); "
          "numpynn trains with its NumPy kernels, the same results somewhat slower", file=sys.stderr)


setup(
    ext_modules=[Extension("numpynn._fused", ["src/numpynn/_fused.c"], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
