#!/usr/bin/env python3
"""The generated man pages against `--help`: every flag and argument that `eco CMD --help`
lists is in eco-CMD(1) and the page names no other; eco.toml(5) lists exactly the keys
`eco serve --config` accepts (the long flags of `eco serve`, but help and config), and
its example uses only those; each page renders without a groff warning."""
import argparse
import os
import re
import subprocess
import sys
import tomllib
import unittest

ARGS = None
COMMANDS = ["serve", "send", "ping", "bench"]


def run(*cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)
    return p


def help_of(*words):
    """Flags and positional names of `eco WORDS --help` (CLI11's layout: an entry starts
    with two spaces; flags are `-x,--long`, positionals a bare name)."""
    p = run(ARGS.eco, *words, "--help")
    assert p.returncode == 0, p.stderr
    flags, positionals, subcommands, section = set(), set(), set(), None
    for line in p.stdout.splitlines():
        if re.match(r"^\S.*:$", line):
            section = line[:-1]
            continue
        m = re.match(r"^  (\S+)", line)
        if not m:
            continue
        token = m.group(1)
        if token.startswith("-"):
            flags |= set(token.split(","))
        elif section == "Positionals":
            positionals.add(token)
        elif section == "Subcommands":
            subcommands.add(token)
    return flags, positionals, subcommands


def roff_text(s):
    return s.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def man_entries(page_file):
    """Flags (bold words starting with '-') and arguments (italic words) of the entries
    after each .TP, and the .TP entries of the KEYS section."""
    with open(page_file) as f:
        lines = f.read().splitlines()
    flags, args, keys, section = set(), set(), [], None
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = line[4:].strip('"')
        if line != ".TP" or i + 1 >= len(lines):
            continue
        head = roff_text(lines[i + 1])
        if section == "KEYS":
            keys.append(re.match(r"\\fB([^\\]+)\\fR = ", head).group(1))
            continue
        bold = re.findall(r"\\fB([^\\]+)\\fR", head)
        flags |= {b for b in bold if b.startswith("-")}
        if section in ("ARGUMENTS", "eco bench merge") or section is None:
            args |= {a.rstrip(".") for a in re.findall(r"\\fI([^\\]+)\\fR", head) if not head.startswith("\\fB")}
    return flags, args, keys, "\n".join(lines)


def page_path(name):
    section = 5 if name == "eco.toml" else 1
    return os.path.join(ARGS.man_dir, f"{name}.{section}")


class ManPages(unittest.TestCase):
    def test_eco_page_matches_eco_help(self):
        flags, _, subs = help_of()
        man_flags, _, _, text = man_entries(page_path("eco"))
        self.assertEqual(man_flags, flags)
        self.assertEqual(subs, set(COMMANDS))
        for cmd in COMMANDS:
            self.assertIn(f"\\fBeco {cmd}\\fR", text)
            self.assertIn(f"\\fBeco\\-{cmd}\\fR(1)", text)
        self.assertNotIn("__man", text)

    def test_each_command_page_matches_its_help(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                flags, positionals, subs = help_of(cmd)
                for sub in subs:  # eco bench merge is on eco-bench(1)
                    f, p, _ = help_of(cmd, sub)
                    flags |= f
                    positionals |= p
                man_flags, man_args, _, text = man_entries(page_path(f"eco-{cmd}"))
                self.assertEqual(man_flags - flags, set(), f"eco-{cmd}(1) names flags that --help does not")
                self.assertEqual(flags - man_flags, set(), f"--help lists flags that eco-{cmd}(1) lacks")
                self.assertEqual(man_args, positionals, f"eco-{cmd}(1)'s arguments")
                for sub in subs:
                    self.assertIn(f'.SH "eco {cmd} {sub}"', text)

    def test_config_page_lists_the_keys_the_loader_accepts(self):
        flags, _, _ = help_of("serve")
        accepted = {f[2:] for f in flags if f.startswith("--")} - {"help", "config"}
        _, _, keys, text = man_entries(page_path("eco.toml"))
        self.assertEqual(len(keys), len(set(keys)), "a key is listed twice")
        self.assertEqual(set(keys), accepted)
        example = re.search(r"^\.EX\n(.*?)^\.EE$", text, re.S | re.M).group(1)
        parsed = tomllib.loads(roff_text(example))
        self.assertTrue(parsed)
        self.assertEqual(set(parsed) - accepted, set(), "the example uses keys eco does not take")
        with open(os.path.join(ARGS.root, "deploy/eco.toml"), "rb") as f:
            shipped = tomllib.load(f)
        self.assertEqual(set(shipped) - set(keys), set(), "deploy/eco.toml uses keys eco.toml(5) does not document")

    def test_the_loader_refuses_what_the_page_does_not_list(self):
        # The other half of "the keys the loader accepts": a key not on the page is refused.
        p = run(ARGS.eco, "serve", "--config", "/dev/stdin", input="not-a-flag = 1\n")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("unknown key 'not-a-flag'", p.stderr)

    def test_pages_render_without_warnings(self):
        for name in ["eco", *[f"eco-{c}" for c in COMMANDS], "eco.toml"]:
            with self.subTest(page=name):
                p = run("man", "--warnings", "-l", "-Tutf8", page_path(name),
                        env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"})
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stderr, "", f"groff warnings for {name}")
                text = re.sub(".\x08", "", p.stdout)  # bold and underline by overstriking
                self.assertIn("NAME", text)
                self.assertIn("SEE ALSO", text)

    def test_unknown_page_is_an_error(self):
        p = run(ARGS.eco, "__man", "eco-nothing")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("no man page 'eco-nothing'", p.stderr)

    def test_hidden_generators_stay_out_of_help(self):
        p = run(ARGS.eco, "--help")
        self.assertNotIn("__man", p.stdout)
        self.assertNotIn("__completion", p.stdout)
        p = run(ARGS.eco, "nosuch")
        self.assertIn("(commands: serve, send, ping, bench)", p.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--eco", required=True)
    ap.add_argument("--man-dir", required=True)
    ap.add_argument("--root", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])
