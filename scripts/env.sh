# Sourced by scripts/test.sh and scripts/demo.sh: makes sure a virtual environment with the project
# and its test extras exists and activates it. SGLANG_KV_VENV picks another location (default .venv).
# Re-installs when pyproject.toml changes (a stamp file holds its sha256).
venv=${SGLANG_KV_VENV:-.venv}
stamp="$venv/.sglang-kv-stamp"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  echo "[env] creating $venv (sglang 0.5.17 + torch 2.11: about 11 GB, 3-4 minutes)"
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[env] installing the project with its test extras into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
