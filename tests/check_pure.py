#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fail when the pure pipeline reaches for the daemon's I/O.

The pure libraries (rpmsd-config, rpmsd-pipeline; daemon/meson.build) need
libinih, libm and libc only. This reads every object in them with nm and
fails on an undefined symbol that

  - one of the daemon's I/O libraries exports (libzmq, libiio, libedf,
    libjansson, libsystemd, libsqlite3, libpq: found with the compiler's -print-file-name,
    read with nm -D),
  - the I/O side of the daemon defines (the rpmsd-core,
    rpmsd-control-request and rpmsd-course archives: publish_*, plugin_*, log_*, ...),
  - or starts a thread or loads a plugin (pthread_create, dlopen: in glibc
    these are libc's own, so they are named here).

It names the object, the symbol and where the symbol lives. Anything else
undefined (libc, libm, libinih, the compiler's sanitizer runtime) passes.

Why nm and not only the link of rpms-detect: a static link pulls only the
objects a program uses, so an I/O call in a module rpms-detect does not
need would build and stay unseen; nm reads every object.

usage: check_pure.py --nm NM --cc CC [--cc-arg ARG]... --io ARCHIVE... -- PURE_ARCHIVE...
"""
import os
import subprocess
import sys

IO_LIBS = ["zmq", "iio", "edf", "jansson", "systemd", "sqlite3", "pq"]
DAEMON_ONLY = {"pthread_create": "threads are the daemon's (rt.c)",
               "dlopen": "plugins are the daemon's (plugin.c)",
               "dlsym": "plugins are the daemon's (plugin.c)"}


def nm(nm_prog, args, path):
    """Lines of `nm ARGS PATH` (a missing archive member list is an error)."""
    out = subprocess.run([nm_prog] + args + [path], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()


def archive_symbols(nm_prog, path):
    """(undefined {symbol: [objects]}, defined set) of a static archive."""
    undef, defined, obj = {}, set(), os.path.basename(path)
    for line in nm(nm_prog, ["-g"], path):
        if line.endswith(":"):
            obj = "%s(%s)" % (os.path.basename(path), line[:-1])
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("U", "w"):
            undef.setdefault(parts[1], []).append(obj)
        elif len(parts) == 3 and parts[1] not in ("U", "w"):
            defined.add(parts[2])
    return undef, defined


def shared_exports(nm_prog, cc, name):
    """Symbols lib<name>.so exports, found where the compiler would link it."""
    out = subprocess.run(cc + ["-print-file-name=lib%s.so" % name], check=True,
                         capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(out) or not os.path.exists(out):
        raise SystemExit("check_pure: lib%s.so not found by %s" % (name, " ".join(cc)))
    syms = set()
    for line in nm(nm_prog, ["-D", "--defined-only"], os.path.realpath(out)):
        parts = line.split()
        if len(parts) == 3:
            syms.add(parts[2].split("@")[0])
    return syms


def main(argv):
    nm_prog, cc, io, pure, i = "nm", [], [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--nm":
            nm_prog, i = argv[i + 1], i + 2
        elif a in ("--cc", "--cc-arg"):
            cc, i = cc + [argv[i + 1]], i + 2
        elif a == "--io":
            i += 1
            while i < len(argv) and argv[i] != "--":
                io.append(argv[i])
                i += 1
        elif a == "--":
            pure, i = argv[i + 1:], len(argv)
        else:
            raise SystemExit(__doc__)
    if not pure or not cc:
        raise SystemExit(__doc__)

    undef, defined = {}, set()
    for path in pure:
        u, d = archive_symbols(nm_prog, path)
        defined |= d
        for s, objs in u.items():
            undef.setdefault(s, []).extend(objs)
    undef = {s: objs for s, objs in undef.items() if s not in defined}

    owner = {}
    for path in io:
        for s in archive_symbols(nm_prog, path)[1]:
            owner.setdefault(s, os.path.basename(path))
    for name in IO_LIBS:
        for s in shared_exports(nm_prog, cc, name):
            owner.setdefault(s, "lib%s.so" % name)
    owner.update(DAEMON_ONLY)

    problems = []
    for s in sorted(undef):
        if s in owner:
            for obj in sorted(set(undef[s])):
                problems.append("%s: uses %s: %s" % (obj, s, owner[s]))
    for p in problems:
        print(p)
    print("%d pure archive(s), %d undefined symbol(s) read: %s"
          % (len(pure), len(undef),
             "%d reach(es) for the daemon's I/O" % len(problems) if problems
             else "none from %s, the daemon's I/O side, threads or plugins"
             % ", ".join("lib%s" % n for n in IO_LIBS)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
