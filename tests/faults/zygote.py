"""A helper process that forks short-lived workers to be killed with SIGKILL (used by tests/faults).

Starting a fresh interpreter and importing aldesk for every kill costs ~1 s; forking this already
warmed-up, single-threaded process costs a few ms, so a test can kill dozens of real workers quickly.
The test process itself is never forked (it may hold Qt or BLAS threads).

Protocol, one line per command on stdin, one JSON line per answer on stdout:
    {"run": "import", "project": P, "folder": F, "batch_files": 4}   -> {"pid": PID}
    {"run": "merge", "project": P, "package": PKG, "reader": R}        -> {"pid": PID}
    {"run": "cli", "argv": ["backup", P, ...]}                         -> {"pid": PID}  (any aldesk command)
    {"wait": PID}    -> {"pid": PID, "killed": bool, "exit": code or null}
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback


def _work(cmd: dict) -> None:
    if cmd["run"] == "import":
        from aldesk.app import importer
        from aldesk.store import Project

        importer.BATCH_FILES = int(cmd.get("batch_files", importer.BATCH_FILES))
        with Project.open(cmd["project"]) as project:
            importer.import_paths(project, [cmd["folder"]], jobs=int(cmd.get("jobs", 1)))
    elif cmd["run"] == "merge":
        from aldesk.cli import main

        code = main(["package", "import", cmd["project"], cmd["package"], *cmd.get("args", [])])
        if code:
            raise SystemExit(code)
    elif cmd["run"] == "cli":
        from aldesk.cli import main

        code = main(cmd["argv"])
        if code:
            raise SystemExit(code)
    else:
        raise ValueError(f"unknown work {cmd['run']!r}")


def main() -> None:
    # warm up: everything the workers import, so a fork is ready to work at once
    import aldesk.app.backups  # noqa: F401
    import aldesk.app.export  # noqa: F401
    import aldesk.app.importer  # noqa: F401
    import aldesk.app.packages  # noqa: F401
    import aldesk.cli  # noqa: F401
    import aldesk.cli.export_commands  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if "wait" in cmd:
            _, status = os.waitpid(int(cmd["wait"]), 0)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            print(json.dumps({"pid": cmd["wait"], "killed": killed,
                              "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                sys.stdin.close()
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                _work(cmd)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 3
            finally:
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
