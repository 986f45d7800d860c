"""Ships the bundled scenarios (scenarios/ at the repository root, where the README's commands
find them) inside the package as sim/scenarios/, so `sim scenarios` and `sim init` work after a
plain `pip install .`. Everything else is configured in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        src = Path(__file__).resolve().parent / "scenarios"
        if src.is_dir():
            dst = Path(self.build_lib) / "sim" / "scenarios"
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))


setup(cmdclass={"build_py": BuildPy})
