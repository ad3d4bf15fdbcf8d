#!/usr/bin/env bash
# Print the path of a Python >= 3.12 that actually runs (pyenv shims can exist and fail).
set -u
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.12 python3.13 python3.14)
for dir in "$HOME"/.pyenv/versions/3.1[2-9]* /root/.pyenv/versions/3.1[2-9]* /usr/local/bin /usr/bin; do
  [ -x "$dir/bin/python3" ] && candidates+=("$dir/bin/python3")
  for v in 3.12 3.13 3.14; do [ -x "$dir/python$v" ] && candidates+=("$dir/python$v"); done
done
candidates+=(python3)
for candidate in "${candidates[@]}"; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if PYENV_VERSION= "$path" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
    echo "$path"
    exit 0
  fi
done
if command -v uv >/dev/null 2>&1; then
  if uv python install 3.12 >/dev/null 2>&1; then
    uv python find 3.12 && exit 0
  fi
fi
echo "error: Python 3.12 or newer is required (pandas-ta needs it) and none was found." >&2
echo "       Install it (e.g. 'apt-get install python3.12', pyenv, or 'pip install uv && uv python install 3.12')" >&2
echo "       or point PYTHON=/path/to/python3.12 at one." >&2
exit 1
