#!/usr/bin/env bash
# The base install (`pip install voxemo`, no extras) in a fresh virtualenv: what it installs, how big it is, and
# that it predicts with the shipped ONNX model without torch. Also runs the start-up benchmark (bench.py,
# section 7) inside it.
#
#   benchmarks/lean_install.sh [RAVDESS_DIR]
#
# RAVDESS_DIR defaults to $VOXEMO_DATA, else ../shared/data/ravdess next to the repository. PYTHON picks the
# interpreter for the venv (default python3); STARTUP_RUNS the start-up runs per command (default 7, 0 skips);
# KEEP=1 keeps the temporary folder. The repository's tracked and untracked-but-not-ignored files are copied
# first, so the build (build/, *.egg-info) never touches the checkout and uncommitted changes are included.
# Needs PyPI (or the configured index) for the dependencies. Exits 1 if any check failed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${1:-${VOXEMO_DATA:-$ROOT/../shared/data/ravdess}}"
CLIP="$DATA/Actor_24/03-01-05-02-01-01-24.flac"  # RAVDESS emotion code 05: angry
EXPECTED=angry
PYTHON="${PYTHON:-python3}"
STARTUP_RUNS="${STARTUP_RUNS:-7}"

[[ -f "$CLIP" ]] || { echo "lean_install: no $CLIP (pass the RAVDESS folder)" >&2; exit 2; }
TMP="$(mktemp -d "${TMPDIR:-/tmp}/voxemo-lean-XXXXXX")"
if [[ "${KEEP:-0}" == 1 ]]; then echo "keeping $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi
VENV="$TMP/venv"
FAILED=0
ok() { echo "  ok: $*"; }
bad() { echo "  FAILED: $*"; FAILED=1; }

echo "## copy of $ROOT"
mkdir "$TMP/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -xf - -C "$TMP/src"
    echo "  commit $(git -C "$ROOT" rev-parse --short HEAD), $(git -C "$ROOT" status --porcelain | wc -l) changed or new files"
else
    cp -r "$ROOT/." "$TMP/src"
fi

echo "## fresh venv: $("$PYTHON" --version) ($(command -v "$PYTHON"))"
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
t0=$SECONDS
if ! "$PY" -m pip install --quiet --disable-pip-version-check "$TMP/src" 2>"$TMP/pip.err"; then
    cat "$TMP/pip.err" >&2; echo "lean_install: pip install failed" >&2; exit 1
fi
# pip's own warnings, without those about missing local index folders that some pip configurations name
grep -v "^WARNING: Location 'file:" "$TMP/pip.err" | sed 's/^/  pip: /' || true
echo "  pip install <copy> (no extras): $((SECONDS - t0)) s ($("$PY" -m pip --version | cut -d' ' -f1-2))"

echo "## what it installed"
"$PY" -m pip list --disable-pip-version-check --format=freeze > "$TMP/pip-list.txt"
N_ALL=$(wc -l < "$TMP/pip-list.txt")
N_DEPS=$(grep -v -i -E '^(pip|setuptools|wheel|voxemo)==' "$TMP/pip-list.txt" | wc -l)
echo "  pip list: $N_ALL distributions ($N_DEPS besides voxemo, pip, setuptools, wheel):"
tr '\n' ' ' < "$TMP/pip-list.txt" | fold -s -w 110 | sed 's/^/    /'
echo
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "  site-packages: $(du -sh "$SITE" | cut -f1) (du -sh; venv in all: $(du -sh "$VENV" | cut -f1))"
DEPS=()  # site-packages without what every venv has (pip, setuptools and their hooks)
for f in "$SITE"/*; do
    [[ "${f##*/}" =~ ^(pip|setuptools|_distutils_hack|pkg_resources|distutils-precedence\.pth)([-_.].*)?$ ]] \
        || DEPS+=("$f")
done
echo "  of which voxemo and its dependencies (without pip and setuptools): $(du -sch "${DEPS[@]}" | tail -1 | cut -f1)"
echo "  voxemo package: $(du -sh "$SITE/voxemo" | cut -f1), of which the shipped model folder $(du -sh "$SITE/voxemo/models" | cut -f1)"
echo "  largest folders in site-packages:"
du -sm "$SITE"/* | sort -rn | head -7 | while read -r mb path; do printf '    %5s MB  %s\n' "$mb" "${path##*/}"; done

echo "## checks"
cd "$TMP"  # away from the checkout, so nothing imports voxemo from its src/
for mod in torch sklearn librosa pandas matplotlib fastapi sounddevice opensmile; do
    if "$PY" -c "import $mod" >/dev/null 2>&1; then bad "import $mod succeeds in the base install"
    else ok "import $mod fails (not installed)"; fi
done
if OUT=$("$VENV/bin/voxemo" predict "$CLIP" 2>"$TMP/predict.err"); then
    GOT=$(printf '%s' "$OUT" | cut -f2)
    if [[ "$GOT" == "$EXPECTED" ]]; then ok "voxemo predict: $(printf '%s' "$OUT" | cut -f2-3 | tr '\t' ' ') ($EXPECTED expected)"
    else bad "voxemo predict said '$OUT', expected $EXPECTED"; fi
else
    bad "voxemo predict exited with $?:"; tail -5 "$TMP/predict.err" | sed 's/^/    /'
fi
if OUT=$("$PY" -m voxemo predict --json "$CLIP" 2>"$TMP/predict.err"); then ok "python -m voxemo predict --json: ${OUT:0:160}"
else bad "python -m voxemo predict --json:"; tail -5 "$TMP/predict.err" | sed 's/^/    /'; fi
if "$VENV/bin/voxemo" --help >/dev/null 2>"$TMP/help.err"; then ok "voxemo --help exits 0"
else bad "voxemo --help:"; tail -5 "$TMP/help.err" | sed 's/^/    /'; fi
if V=$("$VENV/bin/voxemo" --version 2>&1); then ok "voxemo --version: $V"; else bad "voxemo --version: $V"; fi
WHERE=$("$PY" -c 'import voxemo; print(voxemo.__file__)')
if [[ "$WHERE" == "$SITE/"* ]]; then ok "voxemo imported from the venv: $WHERE"; else bad "voxemo imported from $WHERE"; fi

# each optional command without its extra: exit 2 and one line naming the extra
expect_extra() {  # extra, then the command's arguments
    local extra="$1"; shift
    local rc=0 err
    timeout 120 "$VENV/bin/voxemo" "$@" >/dev/null 2>"$TMP/extra.err" </dev/null || rc=$?
    err=$(cat "$TMP/extra.err")
    if [[ $rc == 2 && $(printf '%s\n' "$err" | wc -l) == 1 && "$err" == *"voxemo[$extra]"* ]]; then
        ok "voxemo $* -> exit 2: $err"
    else
        bad "voxemo $* -> exit $rc, expected 2 and one line naming voxemo[$extra]; stderr's last lines:"
        printf '%s\n' "$err" | tail -6 | sed 's/^/    /'
    fi
}
expect_extra serve serve --port 0
expect_extra train evaluate "$DATA" --out "$TMP/eval"
expect_extra train train "$DATA" --out "$TMP/model"
expect_extra train export --onnx "$TMP/m.onnx"
expect_extra train analyze "$DATA" --out "$TMP/analysis"
expect_extra train timeline "$CLIP" --plot "$TMP/t.png"
expect_extra live listen --seconds 1
expect_extra baseline evaluate "$DATA" --model egemaps-svm --out "$TMP/svm"

if [[ "$STARTUP_RUNS" -gt 0 ]]; then
    echo "## start-up in the lean venv (bench.py --startup-only, --startup-runs $STARTUP_RUNS)"
    if ! "$PY" "$ROOT/benchmarks/bench.py" --data "$DATA" --startup-only --startup-runs "$STARTUP_RUNS" -q \
            --json "$TMP/startup.json"; then
        bad "bench.py --startup-only in the lean venv"
    fi
fi

echo
if [[ $FAILED == 0 ]]; then echo "lean install: all checks passed"; else echo "lean install: SOME CHECKS FAILED"; fi
exit $FAILED
