#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fail when a test is written but never run.

The unit tests list their cases by hand in main() (cmocka_unit_test(...))
and the integration tests in the list they pass to run_tests() under
`if __name__ == "__main__":`. A case left out of its list never runs and
the suite still passes: this check makes that a failure.

  tests/unit/test_*.c         every function with cmocka's test signature,
                              void NAME(void **state), is registered with a
                              cmocka_unit_test*() in the same file (comments
                              and #if 0 blocks do not count), and the file is
                              in unit_tests in tests/meson.build
  tests/integration/test_*.py every top-level def test_*() is named in the
                              file's __main__ block, and the file is named in
                              tests/integration/meson.build
  tests/emu/test_*.py         the same, against tests/emu/meson.build

In C the compiler refuses most of these already (a static test nothing
names is -Wunused-function, an error under -Werror); this check does not
depend on the build's flags (-Dwerror=false) and names the cause. In Python
nothing else would notice.

Why a check and not self-registering cases (libgpiod's GPIOD_TEST_CASE,
constructor functions filling a list): that would rewrite every case and
every main() (test_event's does more than run the group), still leave the
Python files with their lists, and hide the list in constructors run
before main(). This script reads the files as they are, covers C and Python the
same way, and needs no change when a test is added.

Usage: check_registered.py [SOURCE_ROOT]   (default: this file's ../)
Prints one line per forgotten test, FILE:LINE: what; exit status 1 if any.
"""
import ast
import os
import re
import sys

# a definition (not a prototype) of void NAME(void **ARG), cmocka's CMUnitTestFunction
CMOCKA_TEST_DEF = re.compile(
    r"^[ \t]*(?:static[ \t]+)?void[ \t]+(\w+)[ \t]*"
    r"\([ \t]*void[ \t]*\*[ \t]*\*[ \t]*\w*[ \t]*\)\s*\{", re.M)
CMOCKA_REGISTER = re.compile(r"\bcmocka_unit_test\w*\s*\(\s*(\w+)")


def strip_c(text):
    """Comments, string and character literals blanked (newlines kept, so
    line numbers hold), then #if 0 ... #endif blocks blanked."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    lines = "".join(out).split("\n")
    depth = 0  # > 0: inside an #if 0, counting nested #if
    for k, line in enumerate(lines):
        d = line.strip()
        if depth:
            if re.match(r"#\s*if", d):
                depth += 1
            elif re.match(r"#\s*endif", d):
                depth -= 1
            elif depth == 1 and re.match(r"#\s*(else|elif)", d):
                depth = 0
            lines[k] = ""
        elif re.match(r"#\s*if\s+0\b", d):
            depth = 1
            lines[k] = ""
    return "\n".join(lines)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def check_c(path, rel):
    with open(path, encoding="utf-8") as f:
        code = strip_c(f.read())
    registered = set(CMOCKA_REGISTER.findall(code))
    defs = list(CMOCKA_TEST_DEF.finditer(code))
    return len(defs), ["%s:%d: %s is a cmocka test but not in main()'s list "
                       "(cmocka_unit_test*): it never runs"
                       % (rel, line_of(code, m.start(1)), m.group(1))
                       for m in defs if m.group(1) not in registered]


def is_main_block(node):
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    names = [node.test.left] + node.test.comparators
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in names)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in names))


def check_py(path, rel):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), rel)
    tests = [n for n in tree.body
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
             and n.name.startswith("test_")]
    named = set()
    for block in filter(is_main_block, tree.body):
        named |= {x.id for x in ast.walk(block) if isinstance(x, ast.Name)}
    return len(tests), ["%s:%d: %s is a test but not named under if __name__ == "
                        "\"__main__\" (the list given to run_tests): it never runs"
                        % (rel, fn.lineno, fn.name) for fn in tests if fn.name not in named]


def read_meson(root, rel):
    """A meson.build without its comments."""
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return "\n".join(line.split("#", 1)[0] for line in f.read().split("\n"))


def meson_list(root, rel, name):
    """The quoted strings of `name = [ ... ]` in a meson.build."""
    text = read_meson(root, rel)
    m = re.search(r"^%s\s*=\s*\[(.*?)\]" % name, text, re.M | re.S)
    return set(re.findall(r"'([^']*)'", m.group(1))) if m else set()


def meson_files(root, rel):
    """Every name given to files(...) in a meson.build."""
    return set(re.findall(r"files\(\s*'([^']*)'", read_meson(root, rel)))


def main(argv):
    root = os.path.abspath(argv[1] if len(argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    unit_dir = os.path.join(root, "tests", "unit")
    integ_dir = os.path.join(root, "tests", "integration")
    unit = sorted(f for f in os.listdir(unit_dir) if f.startswith("test_") and f.endswith(".c"))
    integ = sorted(f for f in os.listdir(integ_dir)
                   if f.startswith("test_") and f.endswith(".py"))
    problems = []
    cases = 0
    for f in unit:
        found, missing = check_c(os.path.join(unit_dir, f), "tests/unit/" + f)
        cases += found
        problems += missing
    for f in integ:
        found, missing = check_py(os.path.join(integ_dir, f), "tests/integration/" + f)
        cases += found
        problems += missing
    built = meson_list(root, "tests/meson.build", "unit_tests")
    problems += ["tests/unit/%s: not in unit_tests in tests/meson.build: it never runs" % f
                 for f in unit if f[len("test_"):-len(".c")] not in built]
    run = meson_files(root, "tests/integration/meson.build")
    problems += ["tests/integration/%s: not given to a test in tests/integration/meson.build: "
                 "it never runs" % f for f in integ if f not in run]
    emu_dir = os.path.join(root, "tests", "emu")
    emu = sorted(f for f in os.listdir(emu_dir) if f.startswith("test_") and f.endswith(".py")) \
        if os.path.isdir(emu_dir) else []
    for f in emu:
        found, missing = check_py(os.path.join(emu_dir, f), "tests/emu/" + f)
        cases += found
        problems += missing
    run = meson_files(root, "tests/emu/meson.build") if emu else set()
    problems += ["tests/emu/%s: not given to a test in tests/emu/meson.build: "
                 "it never runs" % f for f in emu if f not in run]
    for p in problems:
        print(p)
    print("%d unit and %d integration test files, %d test functions: %s"
          % (len(unit), len(integ) + len(emu), cases,
             "%d problem(s)" % len(problems) if problems else "every one runs"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
