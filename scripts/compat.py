"""Version matrix (issue #18): one venv per (Airflow, Python) cell, the version-sensitive tests, a table.

    python scripts/compat.py run [CELL ...]    # make test-compat: every cell, then docs/compatibility.md
    python scripts/compat.py lock CELL         # regenerate constraints/CELL.txt from a fresh working install

Each cell's venv lives in .compat/CELL and is rebuilt only when its constraints, pyproject.toml or Python
change (a stamp); the project itself is reinstalled non-editable on every run. Tests run from a temporary
copy of tests/, dags/ and tooling/, so they import the installed package, never the checkout. Every cell runs even
if one fails; the exit status is non-zero if any check of any cell failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPAT = REPO / ".compat"
EXTRAS = "emulator,amazon,dev"
COMMON_COMPAT_FLOOR = "apache-airflow-providers-common-compat==1.23.0"


@dataclass(frozen=True)
class Cell:
    airflow: str
    python: str
    pins: tuple[str, ...] = ()  # what `lock` adds on top of apache-airflow==X (Airflow's own needs, floors)
    note: str = ""
    crash: bool = False  # also run the deployment tier's crash-retry scenarios on this line

    @property
    def packages(self) -> list[str]:
        return [f"{REPO}[{EXTRAS}]", *(DEPLOYMENT_DRIVERS if self.crash else ())]

    @property
    def name(self) -> str:
        return f"airflow-{self.airflow}-py{self.python}"

    @property
    def constraints(self) -> Path:
        return REPO / "constraints" / f"{self.name}.txt"


FLOORS = ("requests==2.32.0", "aiohttp==3.14.0", "pendulum==3.0.0", "tenacity==8.2.1")
CELLS = [
    Cell("3.0.6", "3.11", ("fastapi==0.116.1", "universal-pathlib==0.2.6", *FLOORS),
         "floor cell: every pyproject floor", crash=True),
    Cell("3.1.8", "3.11", crash=True),
    Cell("3.2.2", "3.11", ("fastapi==0.136.3", "svcs==25.1.0"), crash=True),
    Cell("3.3.2", "3.11", note="also the dev venv's constraints (make venv)"),
    Cell("3.3.2", "3.12"),
    Cell("3.3.2", "3.13"),
]

# (check, test paths); a test belongs to the first check whose path prefixes its node id. "import" runs first and
# proves the installed package is the one under test. One pytest run per cell on two xdist workers (2 cores).
QUICKSTART = "tests/dags/test_example_dags.py::test_quickstart_renders_and_delivers_a_real_mp4"
CHECKS: list[tuple[str, list[str]]] = [
    ("operators", ["tests/operators"]),
    ("sensors", ["tests/sensors"]),
    ("triggers", ["tests/triggers"]),
    ("quickstart dag.test()", [QUICKSTART]),
    ("dags", ["tests/dags"]),
    ("billing safety", ["tests/security/test_billing_once.py"]),
    ("provider info + version check", ["tests/test_provider_info.py", "tests/test_version_check.py"]),
    ("provider CLI", ["tests/test_provider_cli.py"]),
]
CELL_TIMEOUT = 1800
JOBS = os.environ.get("JOBS", "2")

# On 3.0-3.2 (3.3.2 is the deployment tier's own line): a real deployment (PostgreSQL, LocalExecutor, two
# triggerers) where a worker is SIGKILLed during a blocking wait and a triggerer during a deferral; each must
# end with exactly one generation per task.
DEPLOYMENT_DRIVERS = ("psycopg2-binary", "asyncpg")
CRASH = "test_2a_triggerer_killed_while_renders_pending or test_3_worker_crash_reconnects_to_same_render"
CRASH_CHECK = "crash-retry deployment"
CRASH_TIMEOUT = 1200


def check_of(classname: str, name: str) -> str | None:
    """The check of a junit test case (classname "tests.operators.test_x[.TestClass]", name "test_y[param]")."""
    key = f"{classname}::{name}"

    def within(path: str) -> bool:
        dotted = path.replace(".py", "").replace("/", ".")
        return key.startswith(dotted) and key[len(dotted) : len(dotted) + 1] in {"", ".", ":", "["}

    return next((check for check, paths in CHECKS if any(within(p) for p in paths)), None)


def uv() -> str:
    tool = COMPAT / ".tools" / "bin" / "uv"
    if not tool.exists():
        subprocess.run([sys.executable, "-m", "venv", str(tool.parents[1])], check=True)
        subprocess.run([str(tool.parent / "python"), "-m", "pip", "install", "-q", "uv"], check=True)
    return str(tool)


def find_python(version: str) -> str:
    """python3.X on PATH if it runs, else the newest pyenv-installed 3.X."""
    exe = shutil.which(f"python{version}")
    if exe and subprocess.run([exe, "-c", ""], capture_output=True).returncode == 0:
        return exe
    try:
        versions = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        versions = []
    matching = sorted((v for v in versions if re.fullmatch(rf"{re.escape(version)}\.\d+", v)),
                      key=lambda v: int(v.rsplit(".", 1)[1]))
    if matching:
        prefix = subprocess.run(["pyenv", "prefix", matching[-1]], capture_output=True, text=True).stdout.strip()
        return str(Path(prefix) / "bin" / f"python{version}")
    raise SystemExit(f"python{version} not found (PATH or pyenv)")


def scrub(text: str, *roots: Path) -> str:
    """Messages in the committed table must not name this machine's paths."""
    text = re.sub(r"/\S*?/site-packages/", "<site-packages>/", text)
    for root, label in zip(roots, ("<tmp>", "."), strict=False):
        text = text.replace(str(root), label)
    return re.sub(r"/tmp/[\w./-]+", "<tmp>", text)


# uv does not write .pyc files, and where PYTHONDONTWRITEBYTECODE is set (CI) every process would compile
# Airflow's sources again: minutes per cell.
INSTALL = ("pip", "install", "-q", "--compile-bytecode")


def ensure_venv(cell: Cell) -> Path:
    venv = COMPAT / cell.name
    py = venv / "bin" / "python"
    python = find_python(cell.python)
    stamp = hashlib.sha256(cell.constraints.read_bytes() + (REPO / "pyproject.toml").read_bytes()
                           + python.encode() + " ".join([*INSTALL, *cell.packages]).encode()).hexdigest()
    stamp_file = venv / ".compat-stamp"
    if not (py.exists() and stamp_file.exists() and stamp_file.read_text() == stamp):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv(), "venv", "-q", "-p", python, str(venv)], check=True)
        subprocess.run([uv(), *INSTALL, "-p", str(py), "-c", str(cell.constraints), *cell.packages],
                       check=True)
        stamp_file.write_text(stamp)
    else:  # deps unchanged: only the project, non-editable, without touching anything else
        subprocess.run([uv(), *INSTALL, "-p", str(py), "--no-deps", "--reinstall-package",
                        "airflow-provider-magicvideo", str(REPO)], check=True)
    return py


def workdir() -> Path:
    """tests/, dags/, tooling/ (test support, not in the wheel) and pyproject.toml (pytest settings) without the
    package: imports hit site-packages."""
    tmp = Path(tempfile.mkdtemp(prefix="magicvideo-compat-"))
    for folder in ("tests", "dags", "tooling"):
        shutil.copytree(REPO / folder, tmp / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


IMPORT_CHECK = """
import importlib, json, sys, sysconfig
from importlib import metadata
import airflow_provider_magicvideo as pkg
site = sysconfig.get_paths()["purelib"]
assert pkg.__file__.startswith(site), f"package imported from {pkg.__file__}, not the venv's site-packages"
info = pkg.get_provider_info()
mods = [m for key in ("hooks", "operators", "sensors", "triggers") for e in info[key] for m in e["python-modules"]]
for m in mods:
    importlib.import_module(m)
print(json.dumps({"airflow": metadata.version("apache-airflow"), "python": sys.version.split()[0],
                  "common-compat": metadata.version("apache-airflow-providers-common-compat"), "modules": len(mods)}))
"""

GUARD = ("import sys, sysconfig, pytest, airflow_provider_magicvideo as p; "
         "assert p.__file__.startswith(sysconfig.get_paths()['purelib']), p.__file__; "
         "sys.exit(pytest.main(sys.argv[1:]))")


def git_head() -> str:
    """The commit a cell ran on (with ``+`` when the work tree had changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True)
    return (head.stdout.strip() or "unknown") + ("+" if dirty.stdout.strip() else "")


def merged_with_last_run(results: list[dict]) -> list[dict]:
    """A run of some cells updates their rows; the others keep their last result (each row says when it ran)."""
    last = COMPAT / "last-run.json"
    earlier = {r["cell"]: r for r in json.loads(last.read_text())} if last.is_file() else {}
    earlier.update({r["cell"]: r for r in results})
    return [earlier[c.name] for c in CELLS if c.name in earlier]


def run_cell(cell: Cell) -> dict:
    result: dict = {"cell": cell.name, "checks": {}, "failures": [], "ran": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
                    f" UTC, {git_head()}"}
    start = time.monotonic()
    try:
        py = ensure_venv(cell)
    except subprocess.CalledProcessError as exc:
        result["checks"]["install"] = {"ok": False, "seconds": time.monotonic() - start, "summary": str(exc)}
        return result
    result["install_seconds"] = round(time.monotonic() - start, 1)
    tmp = workdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    try:
        t = time.monotonic()
        out = subprocess.run([str(py), "-c", IMPORT_CHECK], cwd=tmp, env=env, capture_output=True, text=True)
        ok = out.returncode == 0
        summary = out.stdout.strip().splitlines()[-1] if ok else scrub(out.stderr.strip().splitlines()[-1], tmp, REPO)
        result["checks"]["import"] = {"ok": ok, "seconds": time.monotonic() - t, "summary": summary}
        if ok:
            result["versions"] = json.loads(summary)
        junit = tmp / "junit.xml"
        paths = sorted({p.split("::")[0] for _, ps in CHECKS for p in ps})
        t = time.monotonic()
        try:
            proc = subprocess.run([str(py), "-c", GUARD, "-q", "-p", "no:cacheprovider", "-n", JOBS, "--dist",
                                   "loadfile", "--junitxml", str(junit), *paths], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=CELL_TIMEOUT)
            rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            rc, tail = -1, [f"timed out after {CELL_TIMEOUT} s"]
        result["tests_seconds"] = round(time.monotonic() - t, 1)
        for check, counts, seconds, failures in parse_junit(junit, tmp):
            result["failures"] += [(check, *f) for f in failures]
            result["checks"][check] = {"ok": not counts["failed"] and bool(counts["passed"]), "seconds": seconds,
                                       "counts": counts, "summary": "" if counts["passed"] else "no test ran"}
        if rc and not result["failures"]:  # pytest failed outside any test (collection, crash, timeout)
            result["checks"]["pytest"] = {"ok": False, "seconds": result["tests_seconds"],
                                          "summary": scrub(" | ".join(tail), tmp, REPO)}
        if cell.crash:
            result["checks"][CRASH_CHECK], result["crash_rows"] = run_crash_scenarios(py, tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def run_crash_scenarios(py: Path, tmp: Path, env: dict[str, str]) -> tuple[dict, list[dict]]:
    """The deployment tier's crash scenarios (2a: triggerer killed, 3: worker killed) on this cell's Airflow."""
    rows_file = tmp / "deployment.json"
    env = {**env, "MAGICVIDEO_DEPLOYMENT_TIER": "1", "MAGICVIDEO_IT_EXECUTORS": "LocalExecutor",
           "MAGICVIDEO_IT_CAMPAIGN": "4", "MAGICVIDEO_IT_JSON": str(rows_file)}
    t = time.monotonic()
    try:
        proc = subprocess.run([str(py), "-c", GUARD, "-q", "-p", "no:cacheprovider", "-m", "deployment", "-k", CRASH,
                               "tests/integration"], cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=CRASH_TIMEOUT)
        rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        rc, tail = -1, [f"timed out after {CRASH_TIMEOUT} s"]
    rows = json.loads(rows_file.read_text())["rows"] if rows_file.exists() else []
    scenarios = [r for r in rows if not r["scenario"].startswith("deployment up")]
    passed = sum(str(r["outcome"]).startswith("PASS") for r in scenarios)
    counts = {"passed": passed, "failed": len(scenarios) - passed, "skipped": 0}
    ok = rc == 0 and len(scenarios) == 2 and passed == 2
    return ({"ok": ok, "seconds": time.monotonic() - t, "counts": counts,
             "summary": "" if ok else scrub(" | ".join(tail), tmp, REPO)}, rows)


def parse_junit(path: Path, tmp: Path) -> list[tuple[str, dict, float, list[tuple[str, str]]]]:
    """Per check: counts, summed test seconds (across both workers), failures."""
    checks: dict[str, tuple[dict[str, int], list[float], list[tuple[str, str]]]] = {
        check: ({"passed": 0, "failed": 0, "skipped": 0}, [0.0], []) for check, _ in CHECKS
    }
    if path.exists():
        for case in ET.parse(path).getroot().iter("testcase"):
            module, name = case.get("classname") or "", case.get("name") or ""
            check = check_of(module, name)
            if check is None:
                continue
            counts, seconds, failures = checks[check]
            seconds[0] += float(case.get("time") or 0)
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            if bad is not None:
                counts["failed"] += 1
                text = (bad.get("message") or bad.text or "").strip().splitlines()
                failures.append((f"{module}::{name}", scrub((text or [""])[0][:300], tmp, REPO)))
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    return [(check, counts, seconds[0], failures) for check, (counts, seconds, failures) in checks.items()]


def write_table(results: list[dict], total: float) -> None:
    names = ["import", *(c for c, _ in CHECKS)]
    names += [n for n in ("pytest", CRASH_CHECK) if any(n in r["checks"] for r in results)]
    lines = [
        "# Compatibility matrix",
        "",
        f"Written by `make test-compat` (scripts/compat.py) on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"{total / 60:.1f} min for the cells run that time on this machine ({os.cpu_count()} cores); a row from "
        "an earlier run says so in its last column. Each cell is a venv built "
        "from `constraints/<cell>.txt` with the project installed non-editable (`.[emulator,amazon,dev]`); the "
        "tests run from a copy of `tests/` so they import the installed package, in one pytest run on two workers; a "
        "check's seconds are the sum of its tests' times, the last columns the cell's build and test wall times.",
        "",
        "| cell | versions | " + " | ".join(names) + " | build | tests | ran |",
        "|---|---|" + "---|" * (len(names) + 3),
    ]
    for r in results:
        v = r.get("versions", {})
        versions = (f"Airflow {v.get('airflow', '?')}, Python {v.get('python', '?')}, "
                    f"common-compat {v.get('common-compat', '?')}")
        cells = []
        for n in names:
            c = r["checks"].get(n)
            if c is None:
                cells.append("—")
                continue
            k = c.get("counts")
            count = f" {k['passed']}/{k['passed'] + k['failed']}" if k and (k["passed"] + k["failed"]) else ""
            cells.append(f"{'pass' if c['ok'] else '**FAIL**'}{count} ({c['seconds']:.0f} s)")
        walls = [f"{r[k]:.0f} s" if k in r else "—" for k in ("install_seconds", "tests_seconds")]
        lines.append(f"| {r['cell']} | {versions} | " + " | ".join([*cells, *walls, r.get("ran", "—")]) + " |")
    crash = [(r["cell"], row) for r in results for row in r.get("crash_rows", [])]
    if crash:
        lines += ["", "## Crash-retry scenarios in a real deployment", "",
                  "The deployment tier's scenarios 2a and 3 (docs/reliability.md) on each older line: PostgreSQL, "
                  "LocalExecutor, two triggerers, the emulator with 45 s renders; POSTs = generations created.", "",
                  "| cell | scenario | renders | POSTs | outcome | wall s | notes |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {cell} | {row['scenario']} | {row['renders']} | {row['posts']} | {row['outcome']} | "
                  f"{row['seconds']} | {row['notes']} |" for cell, row in crash]
    lines += ["", "## Failures", ""]
    for r in results:
        bad = [f"- `{test}` ({check}): {msg}" for check, test, msg in r["failures"]]
        bad += [f"- {n}: {c['summary']}" for n, c in r["checks"].items()
                if not c["ok"] and not c.get("counts", {}).get("failed")]
        if bad:
            lines += [f"### {r['cell']}", "", *bad, ""]
    if all(not r["failures"] and all(c["ok"] for c in r["checks"].values()) for r in results):
        lines.append("None.")
    out = REPO / "docs" / "compatibility.md"
    out.write_text("\n".join(lines).rstrip() + "\n")
    (COMPAT / "last-run.json").write_text(json.dumps(results, indent=1, default=str))


def lock(cell: Cell) -> None:
    venv = COMPAT / f"lock-{cell.name}"
    py = venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([uv(), "venv", "-q", "-p", find_python(cell.python), str(venv)], check=True)
    pins = Path(tempfile.mkstemp(suffix=".txt")[1])
    pins.write_text("\n".join(cell.pins) + "\n")
    subprocess.run([uv(), "pip", "install", "-q", "-p", str(py), "-c", str(pins), f"apache-airflow=={cell.airflow}",
                    COMMON_COMPAT_FLOOR, f"{REPO}[{EXTRAS}]"], check=True)
    frozen = subprocess.run([uv(), "pip", "freeze", "-p", str(py)], check=True, capture_output=True, text=True).stdout
    body = "".join(line + "\n" for line in frozen.splitlines() if "magicvideo" not in line)
    cell.constraints.write_text(
        f"# Constraints for the matrix cell {cell.name}: uv pip freeze of a working install, from\n"
        f"# `python scripts/compat.py lock {cell.name}` (pins: {', '.join(cell.pins) or 'none'}).\n" + body)
    print(f"wrote {cell.constraints.relative_to(REPO)}; now run: python scripts/compat.py run {cell.name}")


def main(argv: list[str]) -> int:
    command, *names = argv or ["run"]
    cells = [c for c in CELLS if not names or c.name in names]
    if names and len(cells) != len(names):
        raise SystemExit(f"unknown cell in {names}; cells: {[c.name for c in CELLS]}")
    if command == "lock":
        for cell in cells:
            lock(cell)
        return 0
    COMPAT.mkdir(exist_ok=True)
    start, results = time.monotonic(), []
    for cell in cells:  # one at a time: the CI machine has 2 cores
        print(f"== {cell.name}", flush=True)
        r = run_cell(cell)
        results.append(r)
        for n, c in r["checks"].items():
            print(f"   {'ok  ' if c['ok'] else 'FAIL'} {n} ({c['seconds']:.0f} s) {c.get('counts', '')}", flush=True)
    total = time.monotonic() - start
    write_table(merged_with_last_run(results), total)
    failed = [r["cell"] for r in results if not all(c["ok"] for c in r["checks"].values())]
    print(f"matrix: {total / 60:.1f} min; failed cells: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
