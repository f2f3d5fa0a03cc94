#!/usr/bin/env python3
"""Make a man page from a program's --help, so the two say the same.

    mkman.py --name dynamod --section 8 --description TEXT --version V
             [--see-also 'dynamoctl(8)'] --output dynamod.8 -- PROGRAM --help

The help text is read by layout, the one every program here uses:

  usage: PROG ...          the first block: SYNOPSIS
         ...
  heading:                 a line at column 0 ending a word or few with ':'
  prose at column 0        filled as a paragraph (DESCRIPTION before any
                           heading)
    TERM    description    an indented block whose lines continue at one
            continued      column: a list (.TP), OPTIONS before any heading
    literal lines          an indented block without that column: kept as is

Nothing is dropped: any line ends up in one of these.
"""

import argparse
import collections
import re
import subprocess
import sys

HEADING = re.compile(r"^([A-Za-z][A-Za-z ()-]{0,40}):(?:\s+(.*))?$")


def indent(line):
    return len(line) - len(line.lstrip(" "))


def esc(text):
    """Text for roff: backslashes, dashes and quotes as themselves."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = text.replace("'", "\\(aq").replace("`", "\\(ga")
    return text


def text_line(text):
    """A line of text, never read as a request."""
    text = esc(text.strip())
    return "\\&" + text if text[:1] in (".", "'") else text


def term(text):
    """An item's term: options and the leading command word in bold."""
    words = text.split()
    out = []
    for i, w in enumerate(words):
        bold = w.startswith("-") or (i == 0 and re.match(r"^[a-z][a-z-]*$", w))
        out.append("\\fB%s\\fR" % esc(w) if bold else esc(w))
    return "\\&" + " ".join(out)


def blocks(lines):
    """Runs of non-blank lines."""
    block = []
    for line in lines:
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def desc_column(run):
    """The column an indented run's descriptions start at, or None."""
    base = min(indent(l) for l in run)
    # Descriptions continue well right of the terms; lines a few columns
    # in are a literal's own layout (an fstab line continued).
    cont = [indent(l) for l in run if indent(l) >= base + 8]
    if cont:
        return collections.Counter(cont).most_common(1)[0][0]
    if any(indent(l) > base for l in run):
        return None
    gaps = []
    for l in run:
        m = re.search(r"\S( {2,})\S", l[base:])
        if m:
            gaps.append(base + m.end(1))
    # Without continuation lines, a list is lines whose descriptions all
    # start at one column after a gap of two spaces or more.
    if gaps and len(gaps) == len(run) and len(set(gaps)) == 1:
        return gaps[0]
    return None


def split_item(line, col):
    """(term, description) of an item's first line."""
    if len(line) > col and line[col - 1] == " " and line[col] != " ":
        return line[:col].strip(), line[col:].strip()
    m = re.search(r"\S( {2,})\S", line)
    if m and m.start(1) > indent(line):
        return line[: m.start(1)].strip(), line[m.end(1):].strip()
    return line.strip(), ""


class Page:
    def __init__(self):
        self.out = []
        self.section = None

    def sh(self, name):
        self.out.append('.SH "%s"' % name.upper())
        self.section = name.upper()

    def ensure(self, name, unless=()):
        if self.section is None or self.section in unless:
            self.sh(name)

    def prose(self, lines):
        self.ensure("DESCRIPTION")
        self.out.append(".PP")
        self.out.extend(text_line(l) for l in lines)

    def indented(self, run):
        col = desc_column(run)
        if col is None:
            base = min(indent(l) for l in run)
            self.ensure("DESCRIPTION")
            self.out += [".PP", ".RS 4", ".nf"]
            self.out += ["\\&" + esc(l[base:].rstrip()) for l in run]
            self.out += [".fi", ".RE"]
            return
        self.ensure("OPTIONS", unless=("DESCRIPTION",))
        for l in run:
            if indent(l) < col:
                t, d = split_item(l, col)
                self.out += [".TP", term(t)]
                if d:
                    self.out.append(text_line(d))
            else:
                self.out.append(text_line(l))

    def block(self, block):
        i = 0
        m = HEADING.match(block[0])
        if m:
            self.sh(m.group(1))
            if m.group(2):
                block = [m.group(2)] + block[1:]
            else:
                block = block[1:]
        while i < len(block):
            j = i
            flat = indent(block[i]) == 0
            while j < len(block) and (indent(block[j]) == 0) == flat:
                j += 1
            (self.prose if flat else self.indented)(block[i:j])
            i = j


def synopsis(block, name):
    first = re.sub(r"^usage:\s*", "", block[0], flags=re.I)
    shift = len(block[0]) - len(first)
    lines = [first] + [l[shift:] if indent(l) >= shift else l.strip()
                       for l in block[1:]]
    out = ['.SH "SYNOPSIS"', ".nf"]
    for l in lines:
        e = esc(l.rstrip())
        e = re.sub(r"^(\s*)%s\b" % re.escape(esc(name)),
                   r"\1\\fB%s\\fR" % esc(name), e)
        out.append("\\&" + e)
    out.append(".fi")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--section", default="8")
    ap.add_argument("--description", required=True)
    ap.add_argument("--version", default="")
    ap.add_argument("--see-also", action="append", default=[])
    ap.add_argument("--output", required=True)
    ap.add_argument("command", nargs="+")
    a = ap.parse_args()

    help_text = subprocess.run(a.command, check=True, stdout=subprocess.PIPE,
                               universal_newlines=True).stdout
    lines = [l.expandtabs().rstrip() for l in help_text.splitlines()]
    parts = list(blocks(lines))
    if not parts or not parts[0][0].lower().startswith("usage:"):
        sys.exit("mkman: %s --help does not start with 'usage:'" % a.name)

    page = Page()
    out = ['.\\" Made by man/mkman.py from `%s --help`: edit that, not this.'
           % a.name,
           '.TH "%s" "%s" "" "dynamofs %s" "System Administration"'
           % (a.name.upper(), a.section, a.version),
           ".nh", ".ad l",  # no hyphens in option names, no justification
           '.SH "NAME"', "%s \\- %s" % (esc(a.name), esc(a.description))]
    out += synopsis(parts[0], a.name)
    for b in parts[1:]:
        page.block(b)
    out += page.out
    if a.see_also:
        refs = []
        for s in a.see_also:
            m = re.match(r"^(.+)\((\w+)\)$", s)
            refs.append("\\fB%s\\fR(%s)" % (esc(m.group(1)), m.group(2))
                        if m else esc(s))
        out += ['.SH "SEE ALSO"', ",\n".join(refs)]
    with open(a.output, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
