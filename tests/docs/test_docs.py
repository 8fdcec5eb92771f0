"""Runs the commands of docs/getting-started.md and the README, as written, from the top of the tree.

A fenced ```sh block preceded by an HTML comment directive is run:

    <!-- doc-test: run -->                  every command line, in order, with bash, each within 120 s
    <!-- doc-test: background URL -->      the block's one command, left running (its own process group)
                                            until the test ends; ready once URL answers 200

A command line may end with a comment holding an expectation:

    cmd   # → TEXT                 stdout contains TEXT (and the exit status is 0)
    cmd   # exit N → TEXT          the exit status is N and stdout+stderr contain TEXT

A command that does not meet its expectation is tried again for up to 5 s before it fails (a person
typing the next command takes longer than the proxies take to apply a change). Lines ending in "\\" join
the next. The ports the quickstart uses must be free when the test starts.

Standard library only; /usr/bin/python3. The README's `make test` line is the command that runs this test and
is skipped.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QUICKSTART_PORTS = (8080, 8081, 8082, 9000, 9001, 9002, 9100, 9901, 9911, 9912, 18000, 18100)
DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(run|background)\s*(\S*)\s*-->")
EXPECT = re.compile(r"#\s*(?:exit\s+(\d+)\s*)?→\s*(.*)$")
SKIP = {"make test"}


def blocks(path):
    """[(kind, arg, [command lines])] for every directive-marked sh block of the markdown file."""
    out, pending, lines, inside = [], None, None, False
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not inside:
                m = DIRECTIVE.search(line)
                if m:
                    pending = (m.group(1), m.group(2))
                elif line.startswith("```sh") and pending:
                    inside, lines = True, []
                elif line.strip() and not line.startswith("```"):
                    pending = pending if line.lstrip().startswith("<!--") else None
                continue
            if line.startswith("```"):
                out.append((pending[0], pending[1], join_continuations(lines)))
                inside, pending = False, None
            else:
                lines.append(line)
    return out


def join_continuations(lines):
    cmds, cur = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip() and not cur.strip().startswith("#"):
            cmds.append(cur.strip())
        cur = ""
    return cmds


def split_expectation(cmd):
    """(command, exit status wanted, text wanted or None)."""
    m = EXPECT.search(cmd)
    if not m:
        return cmd, 0, None
    status = int(m.group(1)) if m.group(1) else 0
    return cmd[:m.start()].rstrip(), status, m.group(2).strip()


def port_busy(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class DocTest(unittest.TestCase):
    """One doc file per test: its blocks share the background processes they start."""

    def setUp(self):
        busy = [p for p in QUICKSTART_PORTS if port_busy(p)]
        if busy:
            self.fail(f"ports {busy} are in use: stop whatever listens there (a running `make run`?)")
        self.tmp = tempfile.TemporaryDirectory(prefix="bgw-doc-")
        self.env = dict(os.environ, BGW_QS_RUN_DIR=os.path.join(self.tmp.name, "run"))
        self.env.pop("BGW_SERVER", None)
        self.background = []

    def tearDown(self):
        for p in self.background:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for p in self.background:
            if p.stdout:
                p.stdout.close()
        self.tmp.cleanup()

    def start(self, cmd, url):
        log = open(os.path.join(self.tmp.name, f"bg{len(self.background)}.log"), "w+b")
        p = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        p.stdout = log
        self.background.append(p)
        deadline = time.monotonic() + 600         # `make run` may build first
        while time.monotonic() < deadline:
            if p.poll() is not None:
                log.seek(0)
                self.fail(f"`{cmd}` exited with {p.returncode}:\n{log.read().decode(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.fail(f"`{cmd}`: {url} not ready")

    def run_one(self, line):
        cmd, want_status, want_text = split_expectation(line)
        deadline = time.monotonic() + 5
        while True:
            r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=self.env, capture_output=True, text=True,
                               timeout=120)
            out = r.stdout if want_status == 0 else r.stdout + r.stderr
            ok = r.returncode == want_status and (want_text is None or want_text in out)
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(ok, f"`{cmd}`: exit {r.returncode} (want {want_status}), "
                            f"want {want_text!r} in:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")

    def run_doc(self, rel):
        found = blocks(os.path.join(ROOT, rel))
        self.assertTrue(found, f"{rel} has no doc-test blocks")
        for kind, arg, cmds in found:
            if kind == "background":
                self.assertEqual(len(cmds), 1, f"{rel}: a background block holds one command")
                self.start(cmds[0], arg)
                continue
            for cmd in cmds:
                if split_expectation(cmd)[0] in SKIP:
                    continue
                with self.subTest(cmd=cmd):
                    self.run_one(cmd)

    def test_getting_started(self):
        self.run_doc("docs/getting-started.md")

    def test_readme(self):
        self.run_doc("README.md")


if __name__ == "__main__":
    unittest.main()
