#!/bin/sh
# SPDX-License-Identifier: MIT
# meson install script: put the default configuration in place without
# ever overwriting one the administrator has changed.
#
#   install-conf.sh SOURCE DIR
#
# DIR is the absolute configuration directory; $DESTDIR (set by meson
# install --destdir) is put in front of it. When DIR/rpmsd.conf is absent
# it is installed; when it is there and differs from SOURCE it is left
# alone and SOURCE is written beside it as rpmsd.conf.dist, to compare
# and merge by hand. Nothing is written on a dry run.
set -eu

src=$1
dir=${DESTDIR:-}$2
conf=$dir/rpmsd.conf
dist=$conf.dist

say() {
	[ -n "${MESON_INSTALL_QUIET:-}" ] || echo "$*"
}

# Meson 0.57 to 1.0 (Debian 12 has 1.0) show an install script's output
# only when it fails: a notice the administrator must see also goes to
# the terminal, when there is one and stdout is not it.
notice() {
	echo "$*"
	# A subshell: a failed redirection of ':' would end this shell.
	if [ ! -t 1 ] && (: >/dev/tty) 2>/dev/null; then
		echo "$*" >/dev/tty
	fi
}

if [ -n "${MESON_INSTALL_DRY_RUN:-}" ]; then
	say "Would install $src to $conf unless a changed one is there"
	exit 0
fi

mkdir -p "$dir"
if [ ! -e "$conf" ] && [ ! -L "$conf" ]; then
	install -m 0644 "$src" "$conf"
	say "Installing $src to $dir"
elif cmp -s "$src" "$conf"; then
	say "Up-to-date: $conf"
else
	install -m 0644 "$src" "$dist"
	# Said even with --quiet: the administrator has to merge.
	notice "rpmsd: kept your $conf (it differs from the new default);" \
		"the new default is $dist"
fi
