"""The README and docs/ stay true to the code: every `ocr COMMAND --flag` they show exists in that command's
`--help` (or is a Beam option, for the Beam jobs), every relative link reaches a file (and a heading, when it
names one), every source file and `make` target they name exists, and the Python API page lists
`Recognizer`'s real arguments and `Reading`'s real fields."""
import inspect
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BEAM_JOBS = {"build-dataset", "predict", "label"}  # flags they do not define go to Beam's PipelineOptions
ALSO_ACCEPTS = {"label": ["predict"]}  # `ocr label` passes predict's flags on to its predict job

FENCE = re.compile(r"^\s*(```|~~~)\s*(\w*)")
PICTURES = {"text"}  # fenced blocks of this language are drawings, not commands
COMMAND = re.compile(r"(?<![\w./-])ocr ((?:--verbose )?)([a-z][a-z-]*)")
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
# Where a shell command ends inside a line: the next command of a pipeline or a list, a redirect, a comment.
COMMAND_END = re.compile(r"&&|\|\||(?<![\w'])\|(?![\w'])|;|>>|\s#\s|\s#$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def commands() -> dict[str, str]:
    from pipelines.cli import COMMANDS

    return {name: module for name, (module, _) in COMMANDS.items()}


def split_page(text: str) -> tuple[list[str], list[str]]:
    """(logical lines of the code blocks, with `\\` continuations joined; the prose lines). Blocks fenced as
    `text` (drawings) are in neither."""
    code, prose, block, pending = [], [], None, ""
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence:
            block = None if block is not None else fence.group(2)
            continue
        if block in PICTURES:
            continue
        if block is None:
            prose.append(line)
        elif line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            code.append(pending + line)
            pending = ""
    return code, prose


def shown_commands(text: str) -> list[tuple[str, str]]:
    """(command, the rest of its invocation) for every `ocr COMMAND …` in code blocks and inline code."""
    code, prose = split_page(text)
    snippets = code + [m.group(2) for line in prose for m in INLINE_CODE.finditer(line)]
    found = []
    for snippet in snippets:
        starts = list(COMMAND.finditer(snippet))
        for i, m in enumerate(starts):
            rest = snippet[m.end():starts[i + 1].start() if i + 1 < len(starts) else len(snippet)]
            end = COMMAND_END.search(rest)
            found.append((m.group(2), rest[:end.start()] if end else rest))
    return found


@cache
def help_flags() -> dict[str, set[str]]:
    """Every command's flags, from its `ocr COMMAND --help` (run in parallel subprocesses)."""
    def one(name):
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", name, "--help"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"ocr {name} --help failed:\n{out.stderr[-2000:]}"
        return name, set(FLAG.findall(out.stdout))

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, commands()))


def is_beam_option(flag: str) -> bool:
    from pipelines.beam_options import unknown_beam_args

    try:
        return not unknown_beam_args([flag], "dask")
    except ValueError:  # known, but given without its value here
        return True


def github_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    code, prose = split_page(path.read_text(encoding="utf-8"))
    anchors, seen = set(), {}
    for line in prose:
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_every_docs_page_is_reachable_from_the_readme():
    """Following relative links from README.md (page to page) reaches every docs/*.md."""
    reached, todo = set(), [(REPO / "README.md").resolve()]
    while todo:
        page = todo.pop()
        if page in reached or not page.exists():
            continue
        reached.add(page)
        code, prose = split_page(page.read_text(encoding="utf-8"))
        todo += [(page.parent / t.split("#")[0]).resolve() for line in prose for t in LINK.findall(line)
                 if t.split("#")[0].endswith(".md") and not re.match(r"[a-z][a-z+.-]*:", t)]
    missing = [str(p.relative_to(REPO)) for p in PAGES if p.resolve() not in reached]
    assert not missing, f"not reachable from README.md by links: {missing}"


def test_every_documented_command_and_flag_exists():
    known = help_flags()
    problems = []
    for page in PAGES:
        for command, rest in shown_commands(page.read_text(encoding="utf-8")):
            where = f"{page.relative_to(REPO)}: `ocr {command}{rest}`"
            if command not in known:
                problems.append(f"{where}: no command `ocr {command}`")
                continue
            accepted = set(known[command]).union(*(known[c] for c in ALSO_ACCEPTS.get(command, [])))
            for flag in FLAG.findall(rest):
                if flag not in accepted and not (command in BEAM_JOBS and is_beam_option(flag)):
                    problems.append(f"{where}: `ocr {command} --help` has no {flag}")
    assert not problems, "\n".join(problems)


def test_relative_links_reach_files_and_headings():
    problems = []
    for page in PAGES:
        code, prose = split_page(page.read_text(encoding="utf-8"))
        for target in (t for line in prose for t in LINK.findall(line)):
            if re.match(r"[a-z][a-z+.-]*:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                problems.append(f"{page.relative_to(REPO)}: ({target}): no file {file}")
            elif anchor and dest.suffix == ".md" and anchor not in github_anchors(dest):
                problems.append(f"{page.relative_to(REPO)}: ({target}): no heading #{anchor} in {dest.name}")
    assert not problems, "\n".join(problems)


SOURCE_FILE = re.compile(r"(?<![\w/.-])(?:ocr_core|pipelines|bench|configs|tests)/[\w/.-]*\.(?:py|yaml|j2)\b")
MAKE = re.compile(r"(?<![\w-])make ([a-z][\w-]*)")


def test_named_source_files_and_make_targets_exist():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    problems = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        code, prose = split_page(text)
        snippets = code + [m.group(2) for line in prose for m in INLINE_CODE.finditer(line)]
        for snippet in snippets:
            problems += [f"{page.relative_to(REPO)}: no file {f}" for f in SOURCE_FILE.findall(snippet)
                         if not (REPO / f).exists()]
            problems += [f"{page.relative_to(REPO)}: no Makefile target `make {t}`"
                         for t in MAKE.findall(snippet) if t not in targets]
    assert not problems, "\n".join(problems)


def test_api_page_matches_recognizer():
    from ocr_core.recognizer import Reading, Recognizer

    page = (REPO / "docs" / "api.md").read_text(encoding="utf-8")

    def table_names(heading: str) -> set[str]:
        section = page.split(heading, 1)[1].split("\n## ", 1)[0]
        return set(re.findall(r"^\| `(\w+)` \|", section, re.M))

    arguments = set(inspect.signature(Recognizer).parameters)
    assert table_names("## `Recognizer(...)`") == arguments
    readme_fields = re.findall(r"^\| `(\w+)` \| `", page.split("A `Reading`", 1)[1], re.M)
    assert set(readme_fields) == {f.name for f in fields(Reading)}


@pytest.mark.parametrize("text, expected", [
    ("`ocr predict --model M --input X` and `ocr evaluate --report R`",
     [("predict", ["--model", "--input"]), ("evaluate", ["--report"])]),
    ("```bash\nocr build-dataset --input a \\\n  --shards 2 && ocr train --data d  # --not-a-flag\n```",
     [("build-dataset", ["--input", "--shards"]), ("train", ["--data"])]),
    ("the `ocr` command, `ocr_core`, /srv/ocr/x, `ocr --verbose predict --decoder beam | head --lines 3`",
     [("predict", ["--decoder"])]),
    ("```text\nocr train --drawn\n```", []),
])
def test_shown_commands_finds_invocations(text, expected):
    assert [(c, FLAG.findall(rest)) for c, rest in shown_commands(text)] == expected
