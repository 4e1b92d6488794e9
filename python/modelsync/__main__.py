"""``python -m modelsync ARGS``: runs the ``modelsync`` binary this wheel
installed, with the same arguments, standard streams and exit code."""

import os
import sys
import sysconfig


def find_binary() -> str:
    """The ``modelsync`` executable installed beside this package."""
    exe = "modelsync" + (sysconfig.get_config_var("EXE") or "")
    candidates = [os.path.join(sysconfig.get_path("scripts"), exe)]
    if sys.version_info >= (3, 10):
        user = sysconfig.get_preferred_scheme("user")
        candidates.append(os.path.join(sysconfig.get_path("scripts", scheme=user), exe))
    # `pip install --target DIR`: DIR/bin beside DIR/modelsync.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(here, "bin", exe))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError("the modelsync binary is not installed; looked in: " + ", ".join(candidates))


def main() -> None:
    binary = find_binary()
    if sys.platform == "win32":
        import subprocess

        sys.exit(subprocess.call([binary, *sys.argv[1:]]))
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
