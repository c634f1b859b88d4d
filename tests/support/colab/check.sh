#!/usr/bin/env bash
# `make colab-check`: build the Colab-like runtime once (tests/support/colab/runtime.sh), put Colab's
# packages back as built, snapshot this checkout (tracked and untracked, not ignored) as the
# repository the notebooks' bootstrap clones, and run the rehearsal (tests/support/colab/rehearse.py):
# each notebook alone in a fresh runtime, then nbval and the suite, then the restart leg.
# COLAB_CHECK_SOURCE=DIR rehearses another checkout's tree (an integration of branches, say)
# with this checkout's runtime. Arguments go to rehearse.py's --suite leg (--no-suite: nbval only).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=${COLAB_RUNTIME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clip-elasticsearch-image-search/colab-runtime}/root
started=$(date +%s)
tests/support/colab/runtime.sh build
built=$(date +%s)
tests/support/colab/runtime.sh reset

SOURCE=${COLAB_CHECK_SOURCE:-.}
SNAPSHOT=$ROOT/srv/snapshot
rm -rf "$SNAPSHOT" && mkdir -p "$SNAPSHOT"
# What a clone would hold, with this checkout's uncommitted edits (deleted files left out).
git -C "$SOURCE" ls-files -z --cached --others --exclude-standard |
	(cd "$SOURCE" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
	tar -C "$SOURCE" --null -T - -cf - | tar -xf - -C "$SNAPSHOT"
git -C "$SNAPSHOT" init -q -b main
git -C "$SNAPSHOT" add -A
git -C "$SNAPSHOT" -c user.name=colab-check -c user.email=colab-check@localhost commit -q \
	-m "snapshot of $(git -C "$SOURCE" rev-parse --short HEAD 2>/dev/null || echo "$SOURCE") for the Colab rehearsal"

cp tests/support/colab/rehearse.py "$ROOT/opt/rehearse.py" # this checkout's runner, whatever the source
rc=0
# Each notebook as its badge opens it: a runtime of its own, Colab's packages as built.
for notebook in "$SNAPSHOT"/notebooks/*.ipynb; do
	[[ $rc == 0 ]] || break
	tests/support/colab/runtime.sh reset
	tests/support/colab/runtime.sh run /opt/driver/bin/python /opt/rehearse.py /srv/snapshot --notebook "$(basename "$notebook")" || rc=$?
done
# Then, in the last notebook's runtime (everything installed), nbval and the suite on 3.13.
if [[ $rc == 0 ]]; then
	tests/support/colab/runtime.sh run /opt/driver/bin/python /opt/rehearse.py /srv/snapshot --suite "$@" || rc=$?
fi
if [[ $rc == 0 ]]; then
	# The restart, for real, on notebook 01 in a runtime put back as built.
	tests/support/colab/runtime.sh reset
	tests/support/colab/runtime.sh run /opt/driver/bin/python /opt/rehearse.py /srv/snapshot --restart-leg || rc=$?
fi
echo "[colab-check] wall time: $((built - started)) s to build or reuse the runtime, $(($(date +%s) - built)) s to rehearse"
exit $rc
