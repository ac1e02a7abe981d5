"""Makes PyTorch's CPU wheel importable for the scripts beside this one.

PyPI's default `torch` is a CUDA build that fails to import without NVIDIA's libraries, so when
`import torch` fails this installs `torch==2.13.0+cpu` (no dependencies) and the few packages it
needs, then re-executes the calling script so that no half-imported torch stays loaded.
"""
import os
import subprocess
import sys

TORCH_PIN = "torch==2.13.0+cpu"
TORCH_DEPS = ["filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec"]


def ensure_torch(script):
    """Returns when torch imports; otherwise installs it and re-executes `script` (a path)."""
    try:
        import torch  # noqa: F401
        return
    except Exception as exc:  # ImportError, or OSError from a broken CUDA build
        if os.environ.get("KILN_TORCH_REEXEC") == "1":
            raise SystemExit(f"torch still fails to import after installing {TORCH_PIN}: {exc!r}")
        print(f"import torch failed ({exc!r}); installing {TORCH_PIN} ...", file=sys.stderr)
    pip = [sys.executable, "-m", "pip", "install"]
    subprocess.check_call(pip + ["--no-deps", TORCH_PIN])
    subprocess.check_call(pip + TORCH_DEPS)
    env = dict(os.environ, KILN_TORCH_REEXEC="1")
    os.execve(sys.executable, [sys.executable, os.path.abspath(script)] + sys.argv[1:], env)
