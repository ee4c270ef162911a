#!/usr/bin/env python3
"""The generated shell completions, used as a shell uses them. bash: the script is
sourced in a clean bash, COMP_WORDS/COMP_CWORD are set as readline would set them, the
completion function is called and COMPREPLY read back. zsh: an interactive zsh with
compinit runs in a pseudo-terminal (zsh/zpty) and is sent Tab. Expected words come from
eco itself (its --help and --version), not from a copy here."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None

BASH_DRIVER = r'''
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
complete -p eco >/dev/null || { echo "no completion registered for eco" >&2; exit 1; }
_eco
printf '%s\n' "${COMPREPLY[@]}"
'''


def help_flags(*words):
    out = subprocess.run([ARGS.eco, *words, "--help"], capture_output=True, text=True, timeout=30).stdout
    flags = set()
    for line in out.splitlines():
        m = re.match(r"^  (-\S+)", line)
        if m:
            flags |= set(m.group(1).split(","))
    return flags


def engines():
    out = subprocess.run([ARGS.eco, "--version"], capture_output=True, text=True, timeout=30).stdout
    return set(re.search(r"engines: ([\w, ]+);", out).group(1).split(", ")) | {"auto"}


class Bash(unittest.TestCase):
    def complete(self, *words, cwd=None):
        """Completions for the command line `words` (the last one is being typed)."""
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "driver", ARGS.bash, *words],
                           capture_output=True, text=True, timeout=30, cwd=cwd)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [w for w in p.stdout.splitlines() if w]

    def test_commands(self):
        self.assertEqual(set(self.complete("eco", "")), {"serve", "send", "ping", "bench"})
        self.assertEqual(set(self.complete("eco", "se")), {"serve", "send"})

    def test_every_flag_of_every_command(self):
        for words in (["serve"], ["send"], ["ping"], ["bench"], ["bench", "merge"]):
            with self.subTest(cmd=words):
                self.assertEqual(set(self.complete("eco", *words, "-")), help_flags(*words))
        self.assertEqual(set(self.complete("eco", "-")), help_flags())

    def test_flag_prefix(self):
        self.assertEqual(self.complete("eco", "serve", "--eng"), ["--engine"])
        self.assertEqual(set(self.complete("eco", "bench", "--con")),
                         {"--conns", "--connect-rate", "--conns-per-source", "--confidence"})

    def test_engine_names(self):
        self.assertEqual(set(self.complete("eco", "serve", "--engine", "")), engines())
        self.assertEqual(self.complete("eco", "serve", "--engine", "ep"), ["epoll"])
        # --engine=ur: bash splits the word at '='.
        self.assertEqual(self.complete("eco", "serve", "--engine", "=", "ur"), ["uring"])
        self.assertEqual(set(self.complete("eco", "serve", "--engine", "=")), engines())

    def test_fixed_value_sets(self):
        self.assertEqual(set(self.complete("eco", "serve", "--log-format", "")), {"text", "json"})
        self.assertEqual(set(self.complete("eco", "bench", "-m", "")), {"rr", "crr", "stream"})

    def test_free_values_offer_nothing(self):
        self.assertEqual(self.complete("eco", "serve", "--listen", ""), [])
        self.assertEqual(self.complete("eco", "ping", "-c", ""), [])

    def test_values_are_not_taken_for_commands(self):
        # "merge" here is --hist's file, so the flags are still eco bench's.
        self.assertIn("--no-verify", self.complete("eco", "bench", "--hist", "merge", "--no"))
        self.assertEqual(set(self.complete("eco", "serve", "--listen", "127.0.0.1:1", "--ud")),
                         {"--udp", "--udp-drop-ports", "--udp-rate-per-ip"})

    def test_file_arguments(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ("run1.json", "run2.json", "other.txt"):
                open(os.path.join(d, name), "w").close()
            self.assertEqual(set(self.complete("eco", "serve", "--config", "run", cwd=d)), {"run1.json", "run2.json"})
            self.assertEqual(set(self.complete("eco", "send", "--file", "o", cwd=d)), {"other.txt"})
            self.assertEqual(set(self.complete("eco", "bench", "merge", "run1.json", "r", cwd=d)), {"run1.json", "run2.json"})
            self.assertEqual(set(self.complete("eco", "bench", "--hist", "", cwd=d)), {"run1.json", "run2.json", "other.txt"})

    def test_subcommand_of_bench(self):
        self.assertEqual(self.complete("eco", "bench", "m"), ["merge"])

    def test_hidden_generators_are_not_offered(self):
        self.assertFalse([w for w in self.complete("eco", "_") if w.startswith("__")])


ZSH_DRIVER = r'''
zmodload zsh/zpty
out=""
# Everything zsh draws until it has been quiet for 0.7 s (bounded: 20 s).
settle() {
  local chunk t=0 quiet=0
  while (( quiet < 7 && t < 200 )); do
    if zpty -rt z chunk; then out+=$chunk; quiet=0; else sleep 0.1; (( quiet++ )); fi
    (( t++ ))
  done
}
zpty z zsh -f -i
# The terminal echoes the command line too: wait for READY as printed, not as typed.
zpty -w z "fpath=($1 \$fpath); autoload -U compinit; compinit -u -D; unsetopt beep; PS1='> '; print RE''ADY"
zpty -r z chunk $'*\nREADY*'
shift
for line in "$@"; do
  zpty -wn z "$line"$'\t'
  settle
  zpty -wn z $'\C-u'
  zpty -w z "print -- '--- end of $line ---'"
  settle
done
zpty -d z
print -r -- "$out"
'''


class Zsh(unittest.TestCase):
    """Each line is typed, Tab pressed, and what zsh drew read back; the marker printed after
    each attempt splits the screen output per line."""

    @classmethod
    def setUpClass(cls):
        cls.fpath = tempfile.mkdtemp()
        shutil.copy(ARGS.zsh, os.path.join(cls.fpath, "_eco"))
        lines = ["eco serve --eng", "eco serve --engine ", "eco ", "eco bench --mo", "eco bench merge --j"]
        p = subprocess.run(["zsh", "-f", "-c", ZSH_DRIVER, "driver", cls.fpath, *lines],
                           capture_output=True, text=True, timeout=60)
        screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", p.stdout)
        cls.screens = {}
        rest = screen
        for line in lines:
            marker = f"--- end of {line} ---"
            before, _, rest = rest.partition(marker + "\n")
            cls.screens[line] = before
        cls.raw = screen

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.fpath)

    def test_loads_and_registers(self):
        p = subprocess.run(["zsh", "-f", "-c", f"fpath=({self.fpath} $fpath); autoload -U compinit; compinit -u -D; "
                            "print -r -- ${_comps[eco]}"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "_eco", p.stderr)

    def test_flag_is_completed(self):
        self.assertIn("eco serve --engine", self.screens["eco serve --eng"], self.raw)
        self.assertIn("eco bench --mode", self.screens["eco bench --mo"], self.raw)
        self.assertIn("eco bench merge --json", self.screens["eco bench merge --j"], self.raw)

    def test_engines_are_listed(self):
        listed = set(re.findall(r"\w+", self.screens["eco serve --engine "]))
        self.assertLessEqual(engines(), listed, self.raw)

    def test_commands_are_listed_with_their_descriptions(self):
        screen = self.screens["eco "]
        for cmd in ("serve", "send", "ping", "bench"):
            self.assertRegex(screen, rf"{cmd}\s+--\s+\S", self.raw)
        self.assertIn("Run the echo server", screen)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--eco", required=True)
    ap.add_argument("--bash", required=True)
    ap.add_argument("--zsh", required=True)
    ARGS, rest = ap.parse_known_args()
    ARGS.eco, ARGS.bash, ARGS.zsh = map(os.path.abspath, (ARGS.eco, ARGS.bash, ARGS.zsh))
    unittest.main(argv=[sys.argv[0], "-v", *rest])
