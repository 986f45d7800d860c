"""Ships the bundled scenarios (scenarios/ at the repository root, where the README's commands
find them) inside the package as sim/scenarios/, so `sim scenarios` and `sim init` work after a
plain `pip install .`, and compiles sim's hottest modules with Cython into sim/_native/ where a C
compiler is there (sim/native.py says how they are loaded; without one, sim runs as Python, the
same results, slower). Everything else is configured in pyproject.toml."""

import os
import runpy
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
NATIVE = runpy.run_path(str(HERE / "sim" / "native.py"))  # (standard library only)
NATIVE_DIR = Path("sim") / "_native"  # the builds, under build_lib or (in place) the sources


def _source(module: str) -> str:
    return module.replace(".", "/") + ".py"


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        src = HERE / "scenarios"
        if src.is_dir():
            dst = Path(self.build_lib) / "sim" / "scenarios"
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))


class BuildNative(build_ext):
    """Cython at build time (not when setup.py is read: pip reads it for metadata too); every
    module optional, so a failed compile leaves that module to Python; then the manifest of the
    sources compiled (sim.native.install checks it at import)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            from Cython.Build import cythonize
        except ImportError:
            print("sim: Cython is not installed; sim runs as Python (slower, same results)")
            return
        translated = cythonize(
            self.extensions,
            build_dir=str(HERE / "build" / "cython"),
            nthreads=self.parallel,
            quiet=True,
            compiler_directives={
                "language_level": 3,
                # Annotations stay hints, as in Python (Cython would enforce `x: list`);
                # C types come only from the .pxd files.
                "annotation_typing": False,
            },
        )
        c_sources = {e.name: e.sources for e in translated}
        for ext in self.extensions:  # (set up by finalize_options: keep them, with the C files)
            ext.sources = c_sources[ext.name]
        super().run()  # (builds into build_lib, then copy_extensions_to_source if in place)
        self._write_manifest()

    def build_extension(self, ext: Extension) -> None:
        if self.compiler.compiler_type == "unix":
            # The same float operations as Python and numpy: no fused multiply-add (GCC and
            # Clang contract a*b+c by default where the CPU has FMA, e.g. on arm64).
            ext.extra_compile_args = [*ext.extra_compile_args, "-O2", "-ffp-contract=off"]
        super().build_extension(ext)

    def get_ext_fullpath(self, ext_name: str) -> str:
        # build_lib/sim/_native/sim.platforms.lambda_warm.cpython-311-x86_64-linux-gnu.so, say:
        # beside none of the sources, so Python's own import never picks one up (sim.native
        # does). (setuptools builds into build_lib even in place, then copies: below.)
        return str(Path(self.build_lib) / NATIVE_DIR / NATIVE["compiled_name"](ext_name))

    def copy_extensions_to_source(self) -> None:
        # An editable install (or --inplace) runs from the sources: the builds go to
        # sim/_native/ there.
        for ext in self.extensions:
            built = Path(self.get_ext_fullpath(ext.name))
            target = HERE / NATIVE_DIR / built.name
            if built.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(built, target)
            else:  # failed this time: no earlier build stays to be listed as this source's
                target.unlink(missing_ok=True)

    def _native_dir(self) -> Path:
        return (HERE if self.inplace else Path(self.build_lib)) / NATIVE_DIR

    def _write_manifest(self) -> None:
        folder = self._native_dir()
        lines = []
        for ext in self.extensions:
            if (folder / NATIVE["compiled_name"](ext.name)).is_file():
                key = NATIVE["source_key"](NATIVE["source_bytes"](str(HERE / _source(ext.name))))
                lines.append(f"{ext.name} {key}\n")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / NATIVE["MANIFEST"]).write_text("".join(lines), encoding="utf-8")
        print(f"sim: {len(lines)} of {len(self.extensions)} modules compiled")


setup(
    cmdclass={"build_py": BuildPy, "build_ext": BuildNative},
    ext_modules=[Extension(m, [_source(m)], optional=True) for m in NATIVE["MODULES"]],
)
