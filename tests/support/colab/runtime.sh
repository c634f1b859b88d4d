#!/usr/bin/env bash
# A Colab-like runtime on this machine: Debian trixie's Python 3.13 in a chroot under
# COLAB_RUNTIME_DIR (default ~/.cache/clip-elasticsearch-image-search/colab-runtime: outside
# the checkout, so every clone on the machine, CI's included, reuses one build), with Colab's versions of the packages that matter
# installed where Colab keeps them (/usr/local/lib/python3.13/dist-packages, pip as root).
#
#   tests/support/colab/runtime.sh build        build once; reused while its inputs are unchanged
#   tests/support/colab/runtime.sh reset        put Colab's packages back as built (before each rehearsal)
#   tests/support/colab/runtime.sh run CMD...   run CMD inside the runtime (/proc, /dev mounted for it)
#
# Needs root (debootstrap, chroot, mount) and PyPI plus Debian's archive.
set -euo pipefail
cd "$(dirname "$0")/../../.."
HERE=tests/support/colab
BASE=${COLAB_RUNTIME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clip-elasticsearch-image-search/colab-runtime}
ROOT=$BASE/root
SITE=usr/local/lib/python3.13/dist-packages
PRISTINE=opt/colab-pristine
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The build's inputs: a change to any of them rebuilds the package layer (not the chroot).
INPUTS=("$HERE/runtime.sh" "$HERE/pins.py" "$HERE/colab-packages.txt" "$HERE"/pip-freeze-*.txt "$HERE/driver-requirements.txt")

log() { printf '[colab-runtime] %s\n' "$*" >&2; }

inputs_hash() { cat "${INPUTS[@]}" | sha256sum | cut -c1-16; }

unmount_all() {
	# Everything mounted under the runtime, deepest first. Called before any rm -rf in it and on
	# exit, so that an interrupted run never leaves /dev bound inside a folder about to be deleted.
	[[ -d $ROOT ]] || return 0
	local root mp
	root=$(realpath "$ROOT")
	for mp in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r); do
		umount "$mp" 2>/dev/null || umount -l "$mp"
	done
	if awk -v r="$root" '$2 == r || index($2, r "/") == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
		log "still mounted under $root: not touching it"
		exit 1
	fi
}
trap unmount_all EXIT

in_root() {
	# Mount what pip, the kernel and multiprocessing need, run, and always unmount.
	local root
	root=$(realpath "$ROOT")
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	mount -t tmpfs shm "$root/dev/shm"
	local rc=0
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_DEFAULT_TIMEOUT=180 \
		PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
		"${RUNTIME_ENV[@]}" "$@" || rc=$?
	unmount_all
	return $rc
}
RUNTIME_ENV=()

build_chroot() {
	if [[ -x $ROOT/usr/bin/python3.13 && -f $BASE/.chroot ]]; then
		return
	fi
	command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
	log "debootstrap: Debian trixie (Python 3.13) into $ROOT"
	unmount_all
	rm -rf "$ROOT"
	mkdir -p "$BASE"
	debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates,git \
		trixie "$ROOT" "$MIRROR" >"$BASE/debootstrap.log" 2>&1 || {
		tail -20 "$BASE/debootstrap.log" >&2
		exit 1
	}
	# Colab's pip installs as root into /usr/local; Debian's marker would refuse that.
	rm -f "$ROOT"/usr/lib/python3.13/EXTERNALLY-MANAGED
	mkdir -p "$ROOT/content"
	touch "$BASE/.chroot"
}

build_system() {
	# Colab's system libraries that Python packages load (tests/support/colab/apt-packages.txt).
	local want
	want=$(sha256sum <"$HERE/apt-packages.txt" | cut -c1-16)
	if [[ -f $BASE/.system && $(cat "$BASE/.system") == "$want" ]]; then
		return
	fi
	cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
	log "system libraries Colab has: $(grep -v '^#' "$HERE/apt-packages.txt" | tr '\n' ' ')"
	in_root apt-get install -y -q --no-install-recommends $(grep -v '^#' "$HERE/apt-packages.txt") \
		>"$BASE/apt.log" 2>&1 || {
		tail -20 "$BASE/apt.log" >&2
		exit 1
	}
	in_root apt-get clean
	echo "$want" >"$BASE/.system"
}

build_packages() {
	local want
	want=$(inputs_hash)
	if [[ -f $BASE/.packages && $(cat "$BASE/.packages") == "$want" ]]; then
		log "reusing the built runtime ($BASE, inputs $want)"
		return
	fi
	rm -f "$BASE/.packages"
	unmount_all
	cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
	# This machine's certificate bundle: whatever PyPI's certificates chain to here.
	cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
	python3 "$HERE/pins.py" "$ROOT/opt/colab-spec"
	cp "$HERE/driver-requirements.txt" "$ROOT/opt/colab-spec/"
	rm -rf "${ROOT:?}/$SITE" "${ROOT:?}/$PRISTINE" "$ROOT/opt/driver"
	# --ignore-installed: Debian's own pip, packaging and wheel (/usr/lib/python3) have no RECORD
	# for pip to uninstall; Colab's versions go to /usr/local and come first on sys.path.
	local pip=(python3 -m pip install --break-system-packages --ignore-installed --no-warn-script-location --progress-bar off)
	log "Colab's pip, then Colab's versions of $(wc -l <"$ROOT/opt/colab-spec/colab-pins.txt") packages (torch's CUDA wheels from PyPI: a few GB)"
	in_root "${pip[@]}" --quiet pip=="$(grep '^pip==' "$ROOT/opt/colab-spec/colab-constraints.txt" | cut -d= -f3)"
	in_root "${pip[@]}" -r /opt/colab-spec/colab-pins.txt -c /opt/colab-spec/colab-constraints.txt \
		>"$BASE/pip-colab.log" 2>&1 || {
		tail -30 "$BASE/pip-colab.log" >&2
		exit 1
	}
	# The rehearsal's own tools (pytest, nbval, ...) live in a venv that sees Colab's packages
	# but that the kernel does not see: the kernel is /usr/bin/python3, as on Colab.
	log "the rehearsal's driver venv (nbval, the project's test tools)"
	in_root python3 -m venv --system-site-packages /opt/driver
	in_root /opt/driver/bin/python -m pip install --no-warn-script-location --progress-bar off --quiet \
		-r /opt/colab-spec/driver-requirements.txt >"$BASE/pip-driver.log" 2>&1 || {
		tail -30 "$BASE/pip-driver.log" >&2
		exit 1
	}
	# Keep Colab's state as built: each rehearsal starts from it (hard links: instant, no space).
	mkdir -p "$ROOT/$PRISTINE"
	cp -al "$ROOT/$SITE" "$ROOT/$PRISTINE/dist-packages"
	cp -al "$ROOT/usr/local/bin" "$ROOT/$PRISTINE/bin"
	echo "$want" >"$BASE/.packages"
	du -sh "$ROOT" | sed 's/^/[colab-runtime] size: /' >&2
}

reset() {
	# pip replaces files (unlink + new file) and never writes into one in place, so the hard
	# links in the pristine copy keep Colab's versions whatever the bootstrap did.
	unmount_all
	rm -rf "${ROOT:?}/$SITE" "${ROOT:?}/usr/local/bin" "${ROOT:?}/content"
	cp -al "$ROOT/$PRISTINE/dist-packages" "$ROOT/$SITE"
	cp -al "$ROOT/$PRISTINE/bin" "$ROOT/usr/local/bin"
	mkdir -p "$ROOT/content"
	# google.colab's stand-in, the kernel's start-up imports and its kernelspec: committed
	# files, copied each time so that editing them needs no rebuild.
	cp -r "$HERE/stub/google" "$ROOT/$SITE/"
	rm -rf "$ROOT/opt/colab-kernel" && mkdir -p "$ROOT/opt/colab-kernel/profile_default/startup"
	cp "$HERE/kernel_startup.py" "$ROOT/opt/colab-kernel/profile_default/startup/00-colab.py"
	mkdir -p "$ROOT/usr/local/share/jupyter/kernels/colab"
	cp "$HERE/kernel.json" "$ROOT/usr/local/share/jupyter/kernels/colab/kernel.json"
}

case "${1:-}" in
build)
	build_chroot
	build_system
	build_packages
	;;
reset) reset ;;
run)
	shift
	while [[ ${1:-} == *=* ]]; do
		RUNTIME_ENV+=("$1")
		shift
	done
	in_root "$@"
	;;
*)
	echo "usage: $0 build | reset | run [NAME=VALUE...] CMD..." >&2
	exit 2
	;;
esac
