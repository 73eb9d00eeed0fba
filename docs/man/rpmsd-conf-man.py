#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write rpmsd.conf(5) from its template and the daemon's own key tables.

    rpmsd-conf-man.py RPMSD TEMPLATE OUTPUT CONFIG_FILE [PLUGIN...]

The keys, their defaults, meanings, allowed values and units come from
`RPMSD --print-config`, and each coil plugin's section from `RPMSD
--plugin-keys PLUGIN`, so the page lists exactly what the daemon accepts.
The template holds the prose; its markers @VERSION@, @CONFIG_FILE@,
@SECTIONS@ and @PLUGINS@ are replaced. Run by meson at build time
(docs/man/meson.build); anything it cannot parse stops the build.
"""

import re
import subprocess
import sys

# One sentence on each section of the daemon's own table. A section the
# daemon has and this lacks is still listed, only without it.
SECTION_INTRO = {
    "daemon": "The process: logging, real-time scheduling, plugins, the pulse ledger.",
    "source": "Where the EMG comes from: a recording replayed (replay) or an "
              "amplifier through libiio (iio); keys marked iio: apply to the latter.",
    "dsp": "The signal chain of each channel before detection: spike limiter, "
           "band-pass, mains notches, envelope.",
    "detect": "Calibration of the rest level, onset and offset thresholds and "
              "times, blanking after pulses, and which channels make a burst.",
    "stim": "The coil plugin and the protocol a burst onset starts.",
    "safety": "Limits the safety gate checks before every pulse; no protocol and "
              "no command may exceed them.",
    "publish": "The ZeroMQ event stream.",
    "record": "One EDF+ or BDF+ recording per session.",
    "control": "The control socket that rpmsctl(1) talks to.",
}

KEY_RE = re.compile(r"^([A-Za-z0-9_]+) = ?(.*)$")
SECTION_RE = re.compile(r"^\[([A-Za-z0-9_.-]+)\]$")


class ParseError(Exception):
    pass


def run(rpmsd, *args):
    r = subprocess.run([rpmsd] + list(args), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise ParseError("%s %s: exit %d: %s" % (rpmsd, " ".join(args), r.returncode,
                                                 r.stderr.strip()))
    return r.stdout


def parse(text, what):
    """[(section, title, [(key, default, [comment lines])])] of an INI text
    in which every key is preceded by its comment lines. Comments before
    a section header are its title (for a plugin: 'name: description')."""
    sections = []
    comments = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            comments = []
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        m = SECTION_RE.match(line)
        if m:
            sections.append((m.group(1), " ".join(comments), []))
            comments = []
            continue
        m = KEY_RE.match(line)
        if not m or not sections:
            raise ParseError("%s:%d: cannot parse %r" % (what, n, line))
        if not comments:
            raise ParseError("%s:%d: %s has no description" % (what, n, m.group(1)))
        sections[-1][2].append((m.group(1), m.group(2).strip(), comments))
        comments = []
    if not sections:
        raise ParseError("%s: no section" % what)
    return sections


def roff(text):
    """Text safe as roff input: backslashes, line-initial control
    characters, and every non-ASCII character as a groff \\[uXXXX] glyph."""
    out = []
    for ch in text.replace("\\", "\\e"):
        out.append(ch if ord(ch) < 128 else "\\[u%04X]" % ord(ch))
    s = "".join(out)
    return "\\&" + s if s[:1] in (".", "'") else s


def literal(text):
    """A value shown as typed: also hyphens as minus signs (\\-), so that
    copying from the rendered page gives the ASCII character."""
    return roff(text).replace("-", "\\-")


def entry(key, default, doc, facts):
    """One key as a tagged paragraph: its description, default and facts."""
    lines = [".TP", ".B %s" % literal(key), roff(doc), ".br"]
    if default == "":
        lines.append("Default: empty.")
    else:
        lines += ["Default:", ".BR \"%s\" ." % literal(default).replace('"', "\\(dq")]
    for fact in facts:
        fact = fact[:1].upper() + fact[1:]
        lines += [".br", roff(fact if fact.endswith(".") else fact + ".")]
    return lines


def daemon_sections(text):
    out = []
    for section, _title, keys in parse(text, "rpmsd --print-config"):
        out.append(".SS [%s]" % literal(section))
        if section in SECTION_INTRO:
            out.append(roff(SECTION_INTRO[section]))
        for key, default, comments in keys:
            doc = [c for c in comments if not c.startswith("allowed:")]
            allowed = [c for c in comments if c.startswith("allowed:")]
            if len(doc) != 1 or len(allowed) != 1:
                raise ParseError("rpmsd --print-config: %s.%s: expected one description and "
                                 "one 'allowed:' line, got %r" % (section, key, comments))
            # "allowed: X; unit: U" -> "Allowed: X." and "Unit: U."
            facts = [f.strip() for f in allowed[0].split("; unit: ")]
            if len(facts) == 2:
                facts[1] = "unit: " + facts[1]
            out += entry(key, default, doc[0], facts)
    return out


def plugin_sections(rpmsd, plugins):
    out = []
    for name in plugins:
        what = "rpmsd --plugin-keys %s" % name
        sections = parse(run(rpmsd, "--plugin-keys", name), what)
        if len(sections) != 1 or sections[0][0] != "coil." + name:
            raise ParseError("%s: expected one section [coil.%s]" % (what, name))
        section, title, keys = sections[0]
        out.append(".SS [%s]" % literal(section))
        if title:
            # "sim: simulated coil: ..." -> "The sim plugin: simulated coil: ..."
            desc = title.split(":", 1)[1].strip() if ":" in title else title
            out.append("The %s plugin: %s." % (literal(name), roff(desc)))
        for key, default, comments in keys:
            if len(comments) != 2:
                raise ParseError("%s: %s: expected a description and a type line, got %r"
                                 % (what, key, comments))
            out += entry(key, default, comments[0], ["type: " + comments[1]])
    return out


def main(argv):
    if len(argv) < 5:
        sys.stderr.write(__doc__)
        return 2
    rpmsd, template, output, config_file = argv[1:5]
    plugins = argv[5:]
    try:
        # "rpmsd 0.1.0 (coil plugin ABI 1.2)"
        words = run(rpmsd, "--version").split()
        if len(words) < 2 or not words[1][:1].isdigit():
            raise ParseError("%s --version: no version in %r" % (rpmsd, " ".join(words)))
        version = words[1]
        sections = daemon_sections(run(rpmsd, "--print-config"))
        coils = plugin_sections(rpmsd, plugins)
    except (ParseError, OSError, subprocess.SubprocessError) as e:
        sys.stderr.write("rpmsd-conf-man: %s\n" % e)
        return 1
    with open(template, encoding="utf-8") as f:
        page = f.read()
    for marker, text in (("@VERSION@", literal(version)),
                         ("@CONFIG_FILE@", literal(config_file)),
                         ("@SECTIONS@", "\n".join(sections)),
                         ("@PLUGINS@", "\n".join(coils) if coils else
                          "No coil plugin was built with this rpmsd.")):
        if marker not in page:
            sys.stderr.write("rpmsd-conf-man: %s: no %s\n" % (template, marker))
            return 1
        page = page.replace(marker, text)
    with open(output, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
