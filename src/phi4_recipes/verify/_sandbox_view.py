"""The filesystem a sandboxed program sees: the system folders and the base interpreter bound read-only, the
caller's virtualenv, checkout, home and every other package folder hidden, and the packages a caller allows
bound into the interpreter's site folder. ``sandbox`` hands this view to the sandbox's init script
(``_sandbox_init.build_root``), which builds the new root from it."""

from __future__ import annotations

import functools
import glob
import importlib.metadata
import importlib.util
import os
import site
import sys
import sysconfig
from pathlib import Path

# Bound read-only at the same path when present (a symlink, as /bin on merged-/usr systems, is copied).
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/ld.so.conf",
                 "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")  # fmt: skip
_PACKAGE_FOLDERS = ("lib*/python*/site-packages", "lib*/python*/dist-packages", "local/lib*/python*/site-packages",
                    "local/lib*/python*/dist-packages")  # fmt: skip


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.cache
def interpreter() -> tuple[str, str]:
    """The base interpreter the program runs on (a venv's would bring the venv's packages) and its install folder."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for name in (f"python{version}", "python3", "python"):
        candidate = os.path.join(sys.base_prefix, "bin", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate), os.path.realpath(sys.base_prefix)
    # A venv made with --copies: its binary, without its pyvenv.cfg in view, falls back to the base install.
    return os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)


def _checkout() -> str:
    """The folder this package was loaded from: the checkout for a source tree or editable install."""
    package_parent = Path(__file__).resolve().parents[2]
    return str(package_parent.parent if package_parent.name == "src" else package_parent)


def _traversable(path: str) -> list[str]:
    """``path``, or its entries when it is a folder others may not enter (an install under ``mktemp -d``, 0700).

    As host root the program runs as another uid: the folders the sandbox makes above a bind are
    open to it, but a bound folder keeps its own mode. Its entries are bound one by one instead.
    """
    if os.path.isdir(path) and not os.stat(path).st_mode & 0o001:
        return [os.path.join(path, name) for name in sorted(os.listdir(path))]
    return [path]


@functools.cache
def system_view() -> dict:
    """What every sandbox shows (see ``_sandbox_init.build_root``) and the folder allowed packages go into."""
    python, prefix = interpreter()
    binds, symlinks = [], []
    for path in _SYSTEM_PATHS:
        if os.path.islink(path):
            symlinks.append([path, os.readlink(path)])
        elif os.path.exists(path):
            binds.append([path, path])
    for path in (prefix, python):
        if not any(_inside(path, bound) for bound, _ in binds):
            binds += [[entry, entry] for entry in _traversable(path)]
    roots = [bound for bound, _ in binds if os.path.isdir(bound)]
    candidates = {found for root in roots + [prefix] for pattern in _PACKAGE_FOLDERS
                  for found in glob.glob(f"{root}/{pattern}")}  # fmt: skip
    candidates.update(site.getsitepackages([sys.base_prefix]))
    candidates.update(path for path in sys.path if os.path.basename(path) in ("site-packages", "dist-packages"))
    # Should the caller's venv, checkout or home lie inside a bound folder (/usr/src/app), cover them too.
    candidates.update((sys.prefix, sys.exec_prefix, _checkout(), os.path.expanduser("~")))
    needed = [python] + [os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    hidden: list[str] = []
    for path in sorted({os.path.realpath(candidate) for candidate in candidates if os.path.isdir(candidate)}):
        in_view = any(_inside(path, root) and path != root for root in roots)
        if in_view and not any(_inside(kept, path) for kept in needed) and not any(_inside(path, h) for h in hidden):
            hidden.append(path)
    site_dir = next((path for path in map(os.path.realpath, site.getsitepackages([sys.base_prefix]))
                     if path in hidden), None)  # fmt: skip
    return {"binds": binds, "symlinks": symlinks, "hidden": hidden, "site_dir": site_dir}


@functools.cache
def _distributions_by_package() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def _package_files(name: str) -> tuple[str, ...]:
    """Host paths an allowed package needs: its folder or module, and what its distribution put beside it.

    Beside it means the top-level entries of its installed files (``numpy.libs`` with the shared
    libraries numpy links, ``*.dist-info`` for ``importlib.metadata``), never ``__pycache__`` (other
    packages' bytecode) or ``.pth`` files. A standard-library or built-in module needs nothing.

    Raises:
        ValueError: ``name`` is not a top-level import name, or is not installed for this interpreter.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"allowed_packages: {name!r} is not a top-level import name (such as 'numpy')")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ValueError(f"allowed_packages: {name!r} is not installed for {sys.executable}")
    locations = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.has_location else [])
    stdlib = [os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    files = [path for path in map(os.path.realpath, locations)
             if not any(_inside(path, folder) for folder in stdlib) or _in_package_folder(path)]  # fmt: skip
    if not files:
        return ()  # the standard library is always in view
    for distribution_name in _distributions_by_package().get(name, []):
        distribution = importlib.metadata.distribution(distribution_name)
        installed_in = Path(distribution.locate_file("")).resolve()
        tops = {file.parts[0] for file in distribution.files or [] if file.parts}
        files += [str(installed_in / top) for top in sorted(tops)
                  if top not in ("..", "__pycache__") and not top.endswith(".pth") and (installed_in / top).exists()]  # fmt: skip
    return tuple(dict.fromkeys(files))


def _in_package_folder(path: str) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in Path(path).parts)


def view_with_packages(allowed_packages: tuple[str, ...]) -> dict:
    """The filesystem the program sees, with ``allowed_packages`` bound into the interpreter's site folder."""
    view = system_view()
    packages: dict[str, str] = {}
    for name in allowed_packages:
        for path in _package_files(name):
            if view["site_dir"] is None:
                raise ValueError(f"allowed_packages: {interpreter()[0]} has no site-packages folder to hold {name!r}")
            target = os.path.join(view["site_dir"], os.path.basename(path))
            if packages.get(target, path) != path:
                raise ValueError(f"allowed_packages: {packages[target]} and {path} would both be {target}")
            packages[target] = path
    return {**view, "packages": [[path, target] for target, path in packages.items()]}
